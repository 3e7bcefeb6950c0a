"""Model inversion (Fredrikson, Jha and Ristenpart 2015) and measures of how much a reconstruction reveals."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from privgen.data import ImageSet, images_to_tensor
from privgen.errors import PrivgenError


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
