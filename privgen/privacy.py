"""Empirical bound on the expected privacy loss of an artificial dataset.

Triastcyn & Faltings (arXiv 1803.03148, section 4.2) imitate removing one real example r from
the teacher's training set by removing the k artificial points nearest to r, which turns the
artificial set A into A_r. The privacy loss of that pair is estimated as KL(P_A || P_A_r) with
the k-NN estimator of Perez-Cruz (2008), and the losses of T random real examples are bounded
with a one-sided Chebyshev inequality that uses the upper semi-variance (Berck and Hihn 1982).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from privgen.errors import PrivgenError
from privgen.neighbours import nearest_neighbours

log = logging.getLogger("privgen.privacy")

# Distances below this fraction of the median neighbour distance count as this value, so that
# exact duplicates give a large but finite log-ratio instead of log 0.
DISTANCE_FLOOR_FRACTION = 1e-6


def distance_floor(distances: np.ndarray) -> float:
    """Return the smallest distance the estimator uses: a tiny fraction of the median positive distance."""
    positive = distances[distances > 0]
    if len(positive) == 0:
        return 1e-12
    return float(DISTANCE_FLOOR_FRACTION * np.median(positive))


def perez_cruz_kl(p_samples: np.ndarray, q_samples: np.ndarray, kl_k: int = 1) -> float:
    """Estimate KL(P || Q) from samples of two distributions with the k-NN estimator of Perez-Cruz (2008).

    KL ~ (d/n) sum_i log(nu(i) / rho(i)) + log(m / (n - 1)), with n and m the sample counts of
    P and Q and d the dimension. rho(i) is the distance from p_i to its kl_k-th nearest
    neighbour among the other P samples, and nu(i) the distance from p_i to its kl_k-th nearest
    Q sample. The two sets are taken as distinct points, so no p_i is removed from Q.
    """
    n, dimension = p_samples.shape
    m = len(q_samples)
    rho = nearest_neighbours(p_samples, p_samples, kl_k, exclude_self=True)[0][:, -1]
    nu = nearest_neighbours(p_samples, q_samples, kl_k)[0][:, -1]
    floor = distance_floor(rho)
    return float(dimension / n * np.sum(np.log(np.maximum(nu, floor) / np.maximum(rho, floor))) + math.log(m / (n - 1)))


class RemovalIndex:
    """Neighbour lists of the artificial set, built once, from which each pair's KL is updated locally.

    Removing a set S of points changes nu(i) only for points whose first kl_k neighbours meet S
    (and for the points of S themselves), so each pair's estimate visits only those points.
    Every point keeps kl_k + max_removed neighbours, enough to find its kl_k-th neighbour
    outside any S of up to max_removed points.
    """

    def __init__(self, features: np.ndarray, kl_k: int, max_removed: int, device="cpu"):
        self.count, self.dimension = features.shape
        if kl_k < 1:
            raise PrivgenError(f"privacy.kl_k is {kl_k}; it must be a positive integer, for example 1")
        if kl_k + max_removed > self.count - 1:
            raise PrivgenError(
                f"removing up to {max_removed} of {self.count} artificial points leaves fewer than kl_k = {kl_k} "
                "neighbours; lower privacy.neighbours (or privacy.max_neighbours) or generate more data"
            )
        self.kl_k = kl_k
        self.max_removed = max_removed
        self.distances, self.indices = nearest_neighbours(features, features, kl_k + max_removed, exclude_self=True, device=device)
        self.floor = distance_floor(self.distances[:, kl_k - 1])
        self.log_rho = np.log(np.maximum(self.distances[:, kl_k - 1], self.floor))
        # Reverse lists in CSR form: the points whose first kl_k neighbours include point j
        # are reverse_owners[reverse_offsets[j]:reverse_offsets[j + 1]].
        targets = self.indices[:, :kl_k].ravel()
        owners = np.repeat(np.arange(self.count), kl_k)
        order = np.argsort(targets, kind="stable")
        self.reverse_owners = owners[order]
        self.reverse_offsets = np.concatenate([[0], np.cumsum(np.bincount(targets, minlength=self.count))])

    def pair_loss(self, removed: np.ndarray) -> float:
        """Estimate KL(P_A || P_A_r) where A_r is the artificial set without the points `removed`."""
        removed = np.unique(removed)
        if len(removed) > self.max_removed:
            raise ValueError(f"{len(removed)} points removed but the index was built for at most {self.max_removed}")
        affected = np.unique(
            np.concatenate([removed] + [self.reverse_owners[self.reverse_offsets[j] : self.reverse_offsets[j + 1]] for j in removed])
        )
        rows = self.indices[affected]
        surviving = ~np.isin(rows, removed)
        # Column of each row's kl_k-th neighbour that survives the removal.
        column = np.argmax(np.cumsum(surviving, axis=1) == self.kl_k, axis=1)
        nu = self.distances[affected, column]
        log_ratio = np.log(np.maximum(nu, self.floor)) - self.log_rho[affected]
        remaining = self.count - len(removed)
        return float(self.dimension / self.count * log_ratio.sum() + math.log(remaining / (self.count - 1)))


def naive_pair_loss(features: np.ndarray, removed: np.ndarray, kl_k: int) -> float:
    """Estimate the same KL as `RemovalIndex.pair_loss` from the full distance matrix; for tests only."""
    count, dimension = features.shape
    differences = features[:, None, :].astype(np.float64) - features[None, :, :].astype(np.float64)
    distances = np.sqrt((differences**2).sum(axis=2))
    np.fill_diagonal(distances, np.inf)
    rho = np.sort(distances, axis=1)[:, kl_k - 1]
    without_removed = distances.copy()
    without_removed[:, np.unique(removed)] = np.inf
    nu = np.sort(without_removed, axis=1)[:, kl_k - 1]
    floor = distance_floor(rho)
    remaining = count - len(np.unique(removed))
    return float(dimension / count * np.sum(np.log(np.maximum(nu, floor) / np.maximum(rho, floor))) + math.log(remaining / (count - 1)))


@dataclass
class PrivacyBound:
    """Mean, upper semi-deviation and the bound mu that the loss exceeds with probability at most gamma."""

    gamma: float
    mean: float
    semi_deviation: float
    mu: float
    pairs: int
    finite_sample_mu: float | None
    finite_sample_min_gamma: float
    finite_sample_mu_at_min_gamma: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def chebyshev_semivariance_mu(losses: np.ndarray, gamma: float) -> tuple[float, float, float]:
    """Return (mean E, upper semi-deviation s+, mu) for P(L >= mu) <= gamma.

    One-sided Chebyshev inequality with semi-variance: P(L >= E + lambda s+) <= 1 / lambda^2,
    where s+^2 is the mean over all samples of max(L - E, 0)^2. Setting 1 / lambda^2 = gamma
    gives mu = E + s+ / sqrt(gamma).
    """
    mean = float(np.mean(losses))
    semi_deviation = float(np.sqrt(np.mean(np.maximum(losses - mean, 0.0) ** 2)))
    return mean, semi_deviation, mean + semi_deviation / math.sqrt(gamma)


def saw_yang_mo_bound(samples: int, lam: float) -> float:
    """Return the bound on P(|L - m| >= lam s) for a new draw L, given m and s (ddof = 1) of N draws.

    The exchangeability argument of Saw, Yang and Mo (1984): over the N + 1 draws, the
    probability equals the expected share of points whose leave-one-out deviation reaches
    lam s. Such a point carries at least the fraction c = lam^2 N^2 / ((N + 1)(N^2 - 1 + N lam^2))
    of the total squared deviation of the N + 1 draws, so at most floor(1 / c) of them exist:
    P <= floor((N + 1) / N * ((N^2 - 1) / (N lam^2) + 1)) / (N + 1). Saw, Yang and Mo sharpen
    the count with the zero sum of the deviations, so this bound is never below theirs. It is
    attained: for N = 9 and draws (1, -1, 0, ..., 0), both non-zero draws lie 10/3 s from the
    mean of the other nine, and the bound at lam = 10/3 is 2/10.
    """
    n = samples
    if n < 2 or lam <= 0:
        return 1.0
    count = math.floor((n + 1) / n * ((n * n - 1) / (n * lam * lam) + 1))
    return min(1.0, count / (n + 1))


def saw_yang_mo_lambda(samples: int, gamma: float) -> float | None:
    """Return the infimum of the lambdas whose bound is at most gamma, or None if none exists.

    Every lambda above the returned value has saw_yang_mo_bound(N, lambda) <= gamma, so
    P(L - m > lambda s) <= gamma at the returned lambda itself. The count in the bound never
    falls below 1, so gammas under 1 / (N + 1) are unsupported. The two-sided event contains
    the one-sided one.
    """
    n = samples
    if n < 2 or gamma < 1.0 / (n + 1):
        return None
    allowed = math.floor(gamma * (n + 1))  # the largest count whose share is at most gamma
    # floor(x) <= allowed exactly when x < allowed + 1; solve that for lambda^2.
    denominator = (allowed + 1) * n / (n + 1) - 1.0
    return math.sqrt((n * n - 1) / (n * denominator))


def privacy_bound(losses: np.ndarray, gamma: float) -> PrivacyBound:
    """Bound the expected privacy loss from per-pair losses at exceedance probability gamma."""
    if not 0 < gamma < 1:
        raise PrivgenError(f"privacy.gamma is {gamma}; it must lie in (0, 1), for example 1e-5")
    losses = np.asarray(losses, dtype=np.float64)
    mean, semi_deviation, mu = chebyshev_semivariance_mu(losses, gamma)
    std = float(np.std(losses, ddof=1)) if len(losses) > 1 else 0.0
    min_gamma = 1.0 / (len(losses) + 1)
    finite_lambda = saw_yang_mo_lambda(len(losses), gamma)
    lambda_at_min = saw_yang_mo_lambda(len(losses), min_gamma)
    return PrivacyBound(
        gamma=gamma,
        mean=mean,
        semi_deviation=semi_deviation,
        mu=mu,
        pairs=len(losses),
        finite_sample_mu=None if finite_lambda is None else float(np.mean(losses)) + finite_lambda * std,
        finite_sample_min_gamma=min_gamma,
        finite_sample_mu_at_min_gamma=float(np.mean(losses)) + (lambda_at_min or math.nan) * std,
    )


@dataclass
class PrivacyEstimate:
    """The per-pair losses with the removal size k they used, the calibration target and the bound."""

    losses: np.ndarray
    real_indices: np.ndarray
    neighbours: int
    real_vs_artificial_kl: float | None
    bound: PrivacyBound


def sample_pairs(real_count: int, pairs: int, seed: int) -> np.ndarray:
    """Choose `pairs` distinct real examples at random."""
    if pairs < 1 or pairs > real_count:
        raise PrivgenError(f"privacy.pairs is {pairs}; it must lie between 1 and the {real_count} real training examples")
    return np.sort(np.random.default_rng(seed).choice(real_count, size=pairs, replace=False))


def mean_pair_loss(index: RemovalIndex, removal_lists: np.ndarray, neighbours: int) -> tuple[float, np.ndarray]:
    losses = np.array([index.pair_loss(row[:neighbours]) for row in removal_lists])
    return float(losses.mean()), losses


def calibrate_neighbours(index: RemovalIndex, removal_lists: np.ndarray, target: float) -> int:
    """Return the smallest k whose mean pair loss reaches `target`, searching 1..index.max_removed.

    Doubles k until the mean reaches the target, then bisects, which assumes the mean grows
    with k (removing more points never brings a neighbour closer). Returns max_removed with a
    warning if even that falls short.
    """
    low, high = 0, 1
    while mean_pair_loss(index, removal_lists, high)[0] < target:
        if high == index.max_removed:
            log.warning("mean pair loss at k = %d is below the real-vs-artificial KL %.4g; using k = %d", high, target, high)
            return high
        low, high = high, min(2 * high, index.max_removed)
    while high - low > 1:
        middle = (low + high) // 2
        if mean_pair_loss(index, removal_lists, middle)[0] >= target:
            high = middle
        else:
            low = middle
    return high


def estimate_privacy(
    real_features: np.ndarray,
    artificial_features: np.ndarray,
    neighbours: int | str,
    pairs: int,
    kl_k: int,
    gamma: float,
    seed: int,
    max_neighbours: int = 100,
    device="cpu",
) -> PrivacyEstimate:
    """Run the whole estimate: choose T real examples, remove their k nearest artificial points, bound the losses.

    `neighbours` is the number k of artificial points removed per real example, or "auto" for
    the smallest k whose mean loss reaches the estimated KL(real || artificial), searched up to
    `max_neighbours`.
    """
    if real_features.ndim != 2 or artificial_features.ndim != 2 or real_features.shape[1] != artificial_features.shape[1]:
        raise PrivgenError(
            f"feature arrays have shapes {real_features.shape} and {artificial_features.shape}; "
            "expected two N x d arrays of the same d, so rerun extract_features"
        )
    if neighbours == "auto":
        max_removed = max_neighbours
    elif isinstance(neighbours, int) and neighbours >= 1:
        max_removed = neighbours
    else:
        raise PrivgenError(f"privacy.neighbours is {neighbours!r}; use a positive integer or 'auto'")
    if max_removed >= len(artificial_features):
        raise PrivgenError(
            f"privacy.neighbours asks to remove {max_removed} of only {len(artificial_features)} artificial points; "
            "lower it or generate more artificial data"
        )
    real_indices = sample_pairs(len(real_features), pairs, seed)
    index = RemovalIndex(artificial_features, kl_k, max_removed, device=device)
    removal_lists = nearest_neighbours(real_features[real_indices], artificial_features, max_removed, device=device)[1]
    real_vs_artificial = None
    if neighbours == "auto":
        real_vs_artificial = perez_cruz_kl(real_features, artificial_features, kl_k)
        neighbours = calibrate_neighbours(index, removal_lists, real_vs_artificial)
        log.info("calibrated k = %d removed neighbours against KL(real || artificial) = %.4g", neighbours, real_vs_artificial)
    losses = mean_pair_loss(index, removal_lists, neighbours)[1]
    return PrivacyEstimate(losses, real_indices, int(neighbours), real_vs_artificial, privacy_bound(losses, gamma))
