"""Image features for the privacy estimate: the space in which nearest neighbours are searched.

- `classifier` (the offline default): the penultimate layer (128-d) of a CNN trained on the real
  train split, so distances reflect what distinguishes the classes and nothing is downloaded.
- `inception`: the 2048-d pool features of torchvision's Inception V3 with ImageNet weights, as
  in the paper. The weights file must already be on disk, because nothing is downloaded.
- `pixels`: flattened pixels scaled to [-1, 1]; cheap, for tests and tiny runs.
"""

from __future__ import annotations

import logging

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from privgen.data import ImageSet, images_to_tensor, stratified_split
from privgen.errors import PrivgenError
from privgen.students import ConvStudent, TrainingConfig, evaluate, train_student

log = logging.getLogger("privgen.features")

EXTRACTORS = ("classifier", "inception", "pixels")
VALIDATION_FRACTION = 0.1

INCEPTION_URL = "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"
INCEPTION_SIZE = 299
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HOW_TO_GET_INCEPTION = (
    f"download torchvision's ImageNet weights from {INCEPTION_URL} on a machine with internet access, "
    "copy the file here and set features.inception_weights to its path"
)


def pixel_features(image_set: ImageSet) -> np.ndarray:
    return images_to_tensor(image_set.images).flatten(start_dim=1).numpy()


def train_feature_classifier(real_train: ImageSet, config: TrainingConfig, device: torch.device) -> ConvStudent:
    """Train the feature CNN on the real train split, keeping the epoch with the lowest loss on a held-out tenth."""
    fit_set, validation_set = stratified_split(real_train, VALIDATION_FRACTION, config.seed)
    channels, height, _ = real_train.image_shape
    model = ConvStudent(channels, height, real_train.num_classes)
    result = train_student(model, fit_set, validation_set, config, device)
    accuracy = evaluate(result.model, validation_set, device)["accuracy"]
    log.info("feature classifier: epoch %d kept, validation accuracy %.4f", result.best_epoch, accuracy)
    return result.model


@torch.no_grad()
def classifier_features(model: ConvStudent, image_set: ImageSet, device: torch.device, batch_size: int = 1000) -> np.ndarray:
    model.eval()
    batches = [
        model.embed(images_to_tensor(image_set.images[start : start + batch_size], device)).cpu().numpy()
        for start in range(0, len(image_set), batch_size)
    ]
    return np.concatenate(batches).astype(np.float32)


def check_extractor(name: str) -> None:
    if name not in EXTRACTORS:
        raise PrivgenError(f"unknown feature extractor {name!r}; choose one of {', '.join(EXTRACTORS)}")


def load_inception(weights_path: str, device: torch.device) -> torch.nn.Module:
    """Build torchvision's Inception V3 from a local ImageNet weights file, returning 2048-d pool features."""
    from torchvision.models.inception import Inception3

    if not weights_path:
        raise PrivgenError(f"features.inception_weights is empty; {HOW_TO_GET_INCEPTION}")
    path = Path(weights_path)
    if not path.is_file():
        raise PrivgenError(f"Inception weights file {weights_path!r} is missing; {HOW_TO_GET_INCEPTION}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for a damaged file
        raise PrivgenError(f"Inception weights file {weights_path!r} is unreadable ({type(error).__name__}); {HOW_TO_GET_INCEPTION}") from None
    # The settings torchvision uses for these weights: inputs normalised with the ImageNet mean
    # and std, which transform_input maps back to the scale the weights were trained on.
    model = Inception3(num_classes=1000, aux_logits=True, transform_input=True, init_weights=False)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise PrivgenError(
            f"Inception weights file {weights_path!r} does not match torchvision's Inception V3 ({first_line}); {HOW_TO_GET_INCEPTION}"
        ) from None
    model.fc = torch.nn.Identity()
    model.aux_logits = False
    model.AuxLogits = None
    return model.to(device).eval()


@torch.no_grad()
def inception_features(model: torch.nn.Module, image_set: ImageSet, device: torch.device, batch_size: int = 50) -> np.ndarray:
    """Return the 2048-d pool features: grey images become three channels, every image is resized to 299x299."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    batches = []
    for start in range(0, len(image_set), batch_size):
        images = torch.from_numpy(image_set.images[start : start + batch_size]).to(device=device, dtype=torch.float32) / 255.0
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        # -> [B, 3, 299, 299]
        images = F.interpolate(images, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        batches.append(model((images - mean) / std).cpu().numpy())
    return np.concatenate(batches).astype(np.float32)


def extract_features(
    extractor: str,
    real_train: ImageSet,
    artificial: ImageSet,
    device: torch.device,
    epochs: int = 5,
    seed: int = 0,
    inception_weights: str = "",
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Map both image sets into the feature space of `extractor`.

    Returns the real and artificial features (float32, N x d) and a description of the
    extractor to save beside them (its name, and the classifier's weights when it has some).
    """
    check_extractor(extractor)
    if real_train.image_shape != artificial.image_shape:
        raise PrivgenError(
            f"real images have shape {real_train.image_shape} but artificial ones {artificial.image_shape}; "
            "regenerate the artificial set from a teacher trained on this data"
        )
    description = {"extractor": extractor, "image_shape": list(real_train.image_shape), "num_classes": real_train.num_classes}
    if extractor == "pixels":
        return pixel_features(real_train), pixel_features(artificial), description
    if extractor == "inception":
        model = load_inception(inception_weights, device)
        description["weights_file"] = Path(inception_weights).name
        return inception_features(model, real_train, device), inception_features(model, artificial, device), description
    model = train_feature_classifier(real_train, TrainingConfig(epochs=epochs, patience=epochs, seed=seed), device)
    description["state_dict"] = model.state_dict()
    return classifier_features(model, real_train, device), classifier_features(model, artificial, device), description


class FeatureSpace:
    """A saved feature extractor that maps image sets into the space that estimate_privacy searched."""

    def __init__(self, extractor: str, model: torch.nn.Module | None, device: torch.device):
        self.extractor = extractor
        self.model = model
        self.device = device

    def transform(self, image_set: ImageSet) -> np.ndarray:
        """Return the features (float32, N x d) of `image_set`, as extract_features computed them."""
        if self.extractor == "pixels":
            return pixel_features(image_set)
        if self.extractor == "inception":
            return inception_features(self.model, image_set, self.device)
        return classifier_features(self.model, image_set, self.device)


def load_feature_space(path: str | Path, device: torch.device, inception_weights: str = "") -> FeatureSpace:
    """Rebuild the extractor that extract_features saved to `path`.

    The `inception` extractor's weights are not saved with it, so they are read again from
    `inception_weights`.
    """
    path = Path(path)
    if not path.is_file():
        raise PrivgenError(f"feature extractor {str(path)!r} is missing; run the extract_features stage first (or `dvc repro`)")
    try:
        description = torch.load(path, map_location="cpu", weights_only=True)
        extractor = description["extractor"]
        check_extractor(extractor)
        if extractor == "pixels":
            return FeatureSpace(extractor, None, device)
        if extractor == "inception":
            return FeatureSpace(extractor, load_inception(inception_weights, device), device)
        channels, height, _ = description["image_shape"]
        model = ConvStudent(channels, height, description["num_classes"])
        model.load_state_dict(description["state_dict"])
    except (KeyError, ValueError, RuntimeError, OSError, EOFError) as error:
        raise PrivgenError(f"feature extractor {str(path)!r} is unreadable ({type(error).__name__}); rerun extract_features") from None
    return FeatureSpace(extractor, model.to(device).eval(), device)
