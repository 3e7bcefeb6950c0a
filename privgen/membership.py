"""Membership inference: does a released dataset or a trained model reveal who was in the training data?

Both attacks give every candidate a score, higher meaning "more likely a member". The ROC AUC
over members (the real train split) and non-members (the real test split) judges them. An AUC of
0.5 means the attacker does no better than chance, and 1 means members are perfectly separated.

- On the release: the score of a candidate image is minus its distance to the nearest artificial
  image. A generator that memorised its training images puts artificial images close to members.
- On a model: the loss-threshold attack of Yeom, Giacomelli, Fredrikson and Jha (2018, "Privacy
  Risk in Machine Learning: Analyzing the Connection to Overfitting"). The score is minus the
  per-example cross-entropy, because a model fits its training examples better than unseen ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn
from torch.nn import functional as F

from privgen.data import ImageSet, images_to_tensor
from privgen.errors import PrivgenError
from privgen.neighbours import nearest_neighbours

CONFIDENCE = 0.95


def roc_auc(member_scores: np.ndarray, non_member_scores: np.ndarray) -> float:
    """Return the ROC AUC: the probability that a random member scores above a random non-member, ties counting half.

    This is the Mann-Whitney U statistic of the members divided by the number of pairs,
    computed from mid-ranks so that tied scores count half.
    """
    members, non_members = np.asarray(member_scores, dtype=np.float64), np.asarray(non_member_scores, dtype=np.float64)
    if len(members) == 0 or len(non_members) == 0:
        raise PrivgenError(f"ROC AUC needs members and non-members; got {len(members)} and {len(non_members)}")
    ranks = rankdata(np.concatenate([members, non_members]))
    u_statistic = ranks[: len(members)].sum() - len(members) * (len(members) + 1) / 2
    return float(u_statistic / (len(members) * len(non_members)))


def bootstrap_auc_interval(
    member_scores: np.ndarray, non_member_scores: np.ndarray, resamples: int, seed: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Return the percentile bootstrap interval of the ROC AUC.

    Members and non-members are resampled separately with replacement, so every resample keeps
    the two group sizes.
    """
    if resamples < 1:
        raise PrivgenError(f"attack.bootstrap_resamples is {resamples}; it must be a positive integer, for example 1000")
    rng = np.random.default_rng(seed)
    members, non_members = np.asarray(member_scores), np.asarray(non_member_scores)
    aucs = np.empty(resamples)
    for index in range(resamples):
        aucs[index] = roc_auc(rng.choice(members, len(members)), rng.choice(non_members, len(non_members)))
    tail = (1 - confidence) / 2
    low, high = np.quantile(aucs, [tail, 1 - tail])
    return float(low), float(high)


@dataclass
class MembershipResult:
    """Scores of the members and non-members, and the ROC AUC with its bootstrap interval."""

    member_scores: np.ndarray
    non_member_scores: np.ndarray
    auc: float
    auc_low: float
    auc_high: float

    def summary(self) -> dict:
        return {
            "auc": self.auc,
            "auc_low": self.auc_low,
            "auc_high": self.auc_high,
            "confidence": CONFIDENCE,
            "members": len(self.member_scores),
            "non_members": len(self.non_member_scores),
        }


def score_membership(member_scores: np.ndarray, non_member_scores: np.ndarray, resamples: int, seed: int) -> MembershipResult:
    low, high = bootstrap_auc_interval(member_scores, non_member_scores, resamples, seed)
    return MembershipResult(member_scores, non_member_scores, roc_auc(member_scores, non_member_scores), low, high)


def pixel_vectors(image_set: ImageSet) -> np.ndarray:
    """Return the images as flat float32 vectors with pixels in [0, 1]."""
    return image_set.images.reshape(len(image_set), -1).astype(np.float32) / 255.0


def release_membership(
    members: ImageSet, non_members: ImageSet, release: ImageSet, resamples: int, seed: int, device: torch.device | str = "cpu"
) -> MembershipResult:
    """Attack a released image set: score each candidate by minus its pixel distance to the nearest released image.

    Pixels, not learned features, because every feature extractor in privgen that needs
    training is trained on the members, which would separate members from non-members
    even for a release that is independent of them.
    """
    if members.image_shape != release.image_shape or non_members.image_shape != release.image_shape:
        raise PrivgenError(
            f"candidate images have shape {members.image_shape} and {non_members.image_shape} but released ones {release.image_shape}; "
            "regenerate the artificial set from a teacher trained on this data"
        )
    released = pixel_vectors(release)
    member_distances = nearest_neighbours(pixel_vectors(members), released, 1, device=device)[0][:, 0]
    non_member_distances = nearest_neighbours(pixel_vectors(non_members), released, 1, device=device)[0][:, 0]
    return score_membership(-member_distances, -non_member_distances, resamples, seed)


@torch.no_grad()
def per_example_losses(model: nn.Module, image_set: ImageSet, device: torch.device | str = "cpu", batch_size: int = 1000) -> np.ndarray:
    """Return the cross-entropy of `model` on every example of `image_set` (float64, in the set's order)."""
    model.eval()
    losses = []
    for start in range(0, len(image_set), batch_size):
        images = images_to_tensor(image_set.images[start : start + batch_size], device)
        labels = torch.from_numpy(image_set.labels[start : start + batch_size]).to(device)
        losses.append(F.cross_entropy(model(images), labels, reduction="none").double().cpu().numpy())
    return np.concatenate(losses)


def loss_threshold_attack(
    model: nn.Module, members: ImageSet, non_members: ImageSet, resamples: int, seed: int, device: torch.device | str = "cpu"
) -> tuple[MembershipResult, float]:
    """Attack a model with the loss-threshold test of Yeom et al. (2018).

    Returns the ROC AUC over all thresholds, and the membership advantage (true positive rate
    minus false positive rate) at the threshold of Yeom et al. That threshold is the mean loss
    of the members, and a candidate counts as a member when its loss is at most that mean.
    """
    member_losses = per_example_losses(model, members, device)
    non_member_losses = per_example_losses(model, non_members, device)
    threshold = member_losses.mean()
    advantage = float((member_losses <= threshold).mean() - (non_member_losses <= threshold).mean())
    return score_membership(-member_losses, -non_member_losses, resamples, seed), advantage
