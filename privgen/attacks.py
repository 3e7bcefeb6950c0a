"""Model inversion (Fredrikson, Jha and Ristenpart 2015) and measures of how much a reconstruction reveals.

A reconstruction is compared with the real training images of its class in two spaces (pixels,
and the feature space of the privacy estimate) and shown to an independent evaluation
classifier. That classifier trains on the real test split only, so it never saw the images
that the attacked models trained on.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from privgen.data import ImageSet, images_to_tensor, stratified_split, tensor_to_images
from privgen.errors import PrivgenError
from privgen.features import FeatureSpace
from privgen.students import ConvStudent, TrainingConfig, train_student

log = logging.getLogger("privgen.attacks")

EVALUATOR_VALIDATION_FRACTION = 0.1
# The models that the attack stage inverts, in the row order of figure 2 of Triastcyn and Faltings
# (arXiv 1803.03148): the non-private model, the model trained on artificial data, DP-SGD.
INVERSION_TARGETS = {"mlp_real": "real data", "mlp_artificial": "artificial data", "mlp_dpsgd": "DP-SGD"}
# Row labels of plots/inversion.png: the real class examples, then one row per inverted model.
INVERSION_ROWS = ["real examples", *(f"MLP, {label}" for label in INVERSION_TARGETS.values())]


@dataclass
class InversionConfig:
    """MI-Face settings; the names match the `attack` section of params.yaml."""

    max_steps: int = 500
    learning_rate: float = 0.1
    window: int = 50
    cost_threshold: float = 0.001

    def validate(self) -> None:
        if self.max_steps < 1 or self.window < 1:
            raise PrivgenError(f"attack.max_steps ({self.max_steps}) and attack.window ({self.window}) must be positive integers")
        if not self.learning_rate > 0:
            raise PrivgenError(f"attack.learning_rate is {self.learning_rate}; it must be positive, for example 0.1")
        if not 0 <= self.cost_threshold < 1:
            raise PrivgenError(f"attack.cost_threshold is {self.cost_threshold}; it must lie in [0, 1), for example 0.001")


def invert_class(model: nn.Module, target: int, start: torch.Tensor, config: InversionConfig) -> tuple[torch.Tensor, float, int]:
    """Reconstruct an input that `model` assigns to class `target`, by gradient descent on the input.

    MI-Face: minimise the cost 1 - p(target | x) from `start`, keeping x in the image range
    [-1, 1]. Stop after `max_steps`, when the cost has not improved on the best of the previous
    `window` steps, or when it falls below `cost_threshold`. Returns the lowest-cost image, its
    cost and the number of steps taken.
    """
    model.eval()
    image = start.clone().unsqueeze(0).requires_grad_(True)
    best_image, best_cost = image.detach().clone(), math.inf
    costs: list[float] = []
    steps = 0
    for steps in range(1, config.max_steps + 1):
        probability = torch.softmax(model(image), dim=1)[0, target]
        cost = 1.0 - probability
        (gradient,) = torch.autograd.grad(cost, image)
        cost_value = cost.item()
        if cost_value < best_cost:
            best_cost, best_image = cost_value, image.detach().clone()
        if cost_value <= config.cost_threshold:
            break
        if len(costs) >= config.window and cost_value >= min(costs[-config.window :]):
            break
        costs.append(cost_value)
        with torch.no_grad():
            image -= config.learning_rate * gradient
            image.clamp_(-1.0, 1.0)
    return best_image[0], best_cost, steps


def invert_all_classes(model: nn.Module, num_classes: int, image_shape, config: InversionConfig, device) -> tuple[torch.Tensor, list[dict]]:
    """Invert every class from the same mid-grey start image; return the images and per-class details."""
    config.validate()
    start = torch.zeros(image_shape, device=device)
    model.to(device)
    images, details = [], []
    for target in range(num_classes):
        image, cost, steps = invert_class(model, target, start, config)
        images.append(image)
        details.append({"cost": cost, "steps": steps})
    return torch.stack(images), details


def reconstruction_distances(reconstructions: torch.Tensor, real_train: ImageSet) -> list[dict]:
    """For each class c, the RMS pixel distance (pixels in [0, 1]) of reconstruction c to the nearest real
    training image of class c and to the mean image of class c."""
    real = (images_to_tensor(real_train.images).flatten(start_dim=1) + 1) / 2
    recon = (reconstructions.detach().cpu().flatten(start_dim=1) + 1) / 2
    pixels = real.shape[1]
    labels = torch.from_numpy(real_train.labels)
    rows = []
    for target in range(len(recon)):
        members = real[labels == target]
        to_members = (members - recon[target]).pow(2).sum(dim=1).div(pixels).sqrt()
        to_mean = (members.mean(dim=0) - recon[target]).pow(2).sum().div(pixels).sqrt()
        rows.append({"nearest_rmse": float(to_members.min()), "class_mean_rmse": float(to_mean)})
    return rows


def class_examples(real_train: ImageSet, per_class: int = 1) -> np.ndarray:
    """Return the first `per_class` real training images of each class (uint8), in class order."""
    picks = [np.flatnonzero(real_train.labels == label)[:per_class] for label in range(real_train.num_classes)]
    return real_train.images[np.concatenate(picks)]


def reconstruction_set(reconstructions: torch.Tensor, class_names: list[str]) -> ImageSet:
    """Return the reconstructions (class c at index c) as a uint8 image set labelled with their target classes."""
    labels = np.arange(len(reconstructions), dtype=np.int64)
    return ImageSet(tensor_to_images(reconstructions), labels, class_names)


def feature_distances(reconstruction_features: np.ndarray, real_features: np.ndarray, real_labels: np.ndarray) -> list[dict]:
    """For each class c, the Euclidean distance of reconstruction c's features to the nearest real training
    image of class c and to the mean feature vector of class c."""
    rows = []
    for target, features in enumerate(reconstruction_features.astype(np.float64)):
        members = real_features[real_labels == target].astype(np.float64)
        to_members = np.linalg.norm(members - features, axis=1)
        to_mean = np.linalg.norm(members.mean(axis=0) - features)
        rows.append({"nearest_feature_distance": float(to_members.min()), "class_mean_feature_distance": float(to_mean)})
    return rows


def train_evaluator(real_test: ImageSet, epochs: int, seed: int, device: torch.device) -> ConvStudent:
    """Train the evaluation CNN on the real test split, selecting its epoch on a held-out tenth of that split."""
    fit_set, validation_set = stratified_split(real_test, EVALUATOR_VALIDATION_FRACTION, seed)
    channels, height, _ = real_test.image_shape
    model = ConvStudent(channels, height, real_test.num_classes)
    result = train_student(model, fit_set, validation_set, TrainingConfig(epochs=epochs, seed=seed), device)
    log.info("evaluation classifier: epoch %d kept of at most %d", result.best_epoch, epochs)
    return result.model.eval()


@torch.no_grad()
def evaluator_scores(evaluator: nn.Module, reconstructions: ImageSet, device: torch.device) -> list[dict]:
    """For each reconstruction, whether the evaluator assigns it to its target class, and the probability it gives that class."""
    evaluator.eval()
    probabilities = torch.softmax(evaluator(images_to_tensor(reconstructions.images, device)), dim=1).cpu()
    rows = []
    for target, row in zip(reconstructions.labels, probabilities):
        rows.append({"recognised": bool(row.argmax() == target), "evaluator_probability": float(row[target])})
    return rows


def invert_and_measure(
    model: nn.Module,
    real_train: ImageSet,
    space: FeatureSpace,
    real_features: np.ndarray,
    evaluator: nn.Module,
    config: InversionConfig,
    device: torch.device,
) -> tuple[np.ndarray, dict]:
    """Invert every class of `model` and measure what the reconstructions reveal.

    Returns the reconstructions (uint8, class c at index c) and a report, per class and as means
    over the classes. The report gives the final cost, and the distances in pixels and in `space`
    to the nearest real training image of the class and to the class mean. It also gives the
    evaluator's verdict on each reconstruction.
    """
    if len(real_features) != len(real_train):
        raise PrivgenError(
            f"{len(real_features)} real feature vectors for {len(real_train)} real training images; rerun extract_features"
        )
    reconstructions, details = invert_all_classes(model, real_train.num_classes, real_train.image_shape, config, device)
    images = reconstruction_set(reconstructions, real_train.class_names)
    pixel_rows = reconstruction_distances(reconstructions, real_train)
    feature_rows = feature_distances(space.transform(images), real_features, real_train.labels)
    evaluator_rows = evaluator_scores(evaluator, images, device)
    per_class = {
        name: {**detail, **pixels, **features, **verdict}
        for name, detail, pixels, features, verdict in zip(real_train.class_names, details, pixel_rows, feature_rows, evaluator_rows)
    }
    rows = list(per_class.values())

    def mean_of(key: str) -> float:
        return float(np.mean([row[key] for row in rows]))

    report = {
        "mean_final_cost": mean_of("cost"),
        "mean_nearest_rmse": mean_of("nearest_rmse"),
        "mean_class_mean_rmse": mean_of("class_mean_rmse"),
        "mean_nearest_feature_distance": mean_of("nearest_feature_distance"),
        "mean_class_mean_feature_distance": mean_of("class_mean_feature_distance"),
        "recognition_rate": mean_of("recognised"),
        "mean_evaluator_probability": mean_of("evaluator_probability"),
        "per_class": per_class,
    }
    return images.images, report
