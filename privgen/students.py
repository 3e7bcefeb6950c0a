"""Student classifiers and their training with early stopping on a validation split.

Students are trained only on artificial data and tested once on the real test split. Their
model selection (the epoch to keep) uses a validation split of the same artificial data.
The same models trained on the real train split give the non-private baseline.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from privgen.data import ImageSet, images_to_tensor, stratified_split
from privgen.errors import PrivgenError

log = logging.getLogger("privgen.students")

STUDENTS = ("cnn", "logistic", "mlp")


class ConvStudent(nn.Module):
    """Two convolutions with ReLU, batch norm and max pooling, then two fully connected layers."""

    def __init__(self, channels: int, image_size: int, num_classes: int, hidden: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            # -> [B, 32, H, W]
            nn.Conv2d(channels, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(32),
            nn.MaxPool2d(2),
            # -> [B, 64, H/2, W/2]
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(64),
            nn.MaxPool2d(2),
            # -> [B, 64, H/4, W/4]
            nn.Flatten(),
            nn.Linear(64 * (image_size // 4) ** 2, hidden),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(hidden, num_classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Return the penultimate-layer activations (the input of the last layer)."""
        return self.features(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))


class MLPStudent(nn.Module):
    """Multi-layer perceptron on flattened pixels: 784-1000-300-10 on MNIST-sized input."""

    def __init__(self, input_dim: int, num_classes: int, hidden: tuple[int, ...] = (1000, 300)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        previous = input_dim
        for width in hidden:
            layers += [nn.Linear(previous, width), nn.ReLU()]
            previous = width
        layers.append(nn.Linear(previous, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


def build_student(name: str, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    channels, height, width = image_shape
    if name == "cnn":
        return ConvStudent(channels, height, num_classes)
    if name == "mlp":
        return MLPStudent(channels * height * width, num_classes)
    if name == "logistic":
        return MLPStudent(channels * height * width, num_classes, hidden=())
    raise PrivgenError(f"unknown student {name!r}; choose from {', '.join(STUDENTS)}")


@dataclass
class TrainingConfig:
    """Settings of one student's training; the names match the `students` section of params.yaml."""

    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 3
    seed: int = 0

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise PrivgenError(f"students.{name} is {getattr(self, name)}; it must be a positive integer")
        if not self.learning_rate > 0:
            raise PrivgenError(f"students.learning_rate is {self.learning_rate}; it must be positive, for example 0.001")


@dataclass
class TrainingResult:
    """The model with its best-validation weights loaded, and per-epoch losses."""

    model: nn.Module
    best_epoch: int
    validation_losses: list[float] = field(default_factory=list)
    monitor_losses: list[float] = field(default_factory=list)


@torch.no_grad()
def evaluate(model: nn.Module, image_set: ImageSet, device: torch.device, batch_size: int = 1000) -> dict[str, float]:
    """Return the mean cross-entropy and the accuracy of `model` on `image_set`."""
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(image_set), batch_size):
        images = images_to_tensor(image_set.images[start : start + batch_size], device)
        labels = torch.from_numpy(image_set.labels[start : start + batch_size]).to(device)
        logits = model(images)
        total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(dim=1) == labels).sum().item()
    return {"loss": total_loss / len(image_set), "accuracy": correct / len(image_set)}


def train_student(
    model: nn.Module,
    train_set: ImageSet,
    validation_set: ImageSet,
    config: TrainingConfig,
    device: torch.device,
    monitor_set: ImageSet | None = None,
) -> TrainingResult:
    """Train with Adam, keep the weights of the epoch with the lowest validation loss.

    Training stops after `patience` epochs without improvement. `monitor_set`, when given, is
    only evaluated after each epoch (to compare validation curves), never used for selection.
    """
    config.validate()
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    images = images_to_tensor(train_set.images, device)
    labels = torch.from_numpy(train_set.labels).to(device)
    best_loss, best_epoch, best_state = math.inf, 0, None
    result = TrainingResult(model=model, best_epoch=0)
    for epoch in range(1, config.epochs + 1):
        # One pass over the training set in a seeded random order.
        model.train()
        order = torch.randperm(len(labels), generator=generator).to(device)
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        # Model selection on the validation split only.
        validation_loss = evaluate(model, validation_set, device)["loss"]
        result.validation_losses.append(validation_loss)
        if monitor_set is not None:
            result.monitor_losses.append(evaluate(model, monitor_set, device)["loss"])
        if validation_loss < best_loss:
            best_loss, best_epoch = validation_loss, epoch
            best_state = {name: value.detach().clone() for name, value in model.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    result.best_epoch = best_epoch
    return result


def selection_split(image_set: ImageSet, validation_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Split a student's training data into the part it fits and the validation part that selects its epoch."""
    return stratified_split(image_set, validation_fraction, seed)


def loss_correlation(first: list[float], second: list[float]) -> float | None:
    """Pearson correlation of two per-epoch loss curves; None when it is undefined (under 3 epochs or constant)."""
    if len(first) < 3 or np.std(first) == 0 or np.std(second) == 0:
        return None
    return float(np.corrcoef(first, second)[0, 1])
