"""Image sets in privgen's on-disk format; privgen.datasets reads the datasets they are prepared from.

Every split and every artificial set is one `.npz` file with three arrays: `images` (uint8,
N x C x H x W), `labels` (int64, N) and `class_names` (str, number of classes). Pixels stay uint8
on disk and are scaled to [-1, 1] only inside the models.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from privgen.errors import PrivgenError
from privgen.files import atomic_path

NPZ_KEYS = ("images", "labels", "class_names")


@dataclass
class ImageSet:
    """Labelled images: uint8 N x C x H x W, int64 labels and one name per class."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Channels, height and width of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, indices: np.ndarray) -> ImageSet:
        return ImageSet(self.images[indices], self.labels[indices], self.class_names)

    def counts_per_class(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(count) for name, count in zip(self.class_names, counts)}


def images_to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """Scale uint8 images to float32 in [-1, 1] on `device`."""
    return torch.from_numpy(images).to(device=device, dtype=torch.float32).div_(127.5).sub_(1.0)


def tensor_to_images(tensor: torch.Tensor) -> np.ndarray:
    """Map float images in [-1, 1] back to uint8, rounding to the nearest level."""
    scaled = (tensor.detach().float().clamp(-1, 1) + 1.0) * 127.5
    return scaled.round().to(torch.uint8).cpu().numpy()


def save_image_set(path: str | Path, image_set: ImageSet) -> None:
    """Write an image set as an uncompressed npz file, atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(
                handle,
                images=image_set.images,
                labels=image_set.labels,
                class_names=np.asarray(image_set.class_names, dtype=str),
            )


def load_image_set(path: str | Path) -> ImageSet:
    """Read and check an image set written by `save_image_set`."""
    path = Path(path)
    if not path.is_file():
        raise PrivgenError(f"image set {str(path)!r} is missing; run the stage that writes it first (or `dvc repro`)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise PrivgenError(
                    f"image set {str(path)!r} lacks the array(s) {missing}; "
                    f"it must hold {list(NPZ_KEYS)}, so regenerate it with its stage"
                )
            images, labels, class_names = (archive[key] for key in NPZ_KEYS)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise PrivgenError(f"image set {str(path)!r} is not a readable npz file ({error}); regenerate it with its stage") from None
    if images.dtype != np.uint8 or images.ndim != 4:
        raise PrivgenError(
            f"image set {str(path)!r} has images of dtype {images.dtype} and shape {images.shape}; "
            "expected uint8 N x C x H x W, so regenerate it with its stage"
        )
    if labels.dtype != np.int64 or labels.shape != (len(images),):
        raise PrivgenError(
            f"image set {str(path)!r} has labels of dtype {labels.dtype} and shape {labels.shape} "
            f"for {len(images)} images; expected int64 of shape ({len(images)},), so regenerate it with its stage"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise PrivgenError(
            f"image set {str(path)!r} has labels outside 0..{len(class_names) - 1}; regenerate it with its stage"
        )
    return ImageSet(images, labels, [str(name) for name in class_names])


def stratified_split(image_set: ImageSet, test_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Split each class at random into train and test parts, `test_fraction` of it going to test."""
    if not 0 < test_fraction < 1:
        raise PrivgenError(f"test fraction {test_fraction} is outside (0, 1); use for example 0.2")
    rng = np.random.default_rng(seed)
    train_indices, test_indices = [], []
    for label in range(image_set.num_classes):
        members = rng.permutation(np.flatnonzero(image_set.labels == label))
        test_count = int(round(test_fraction * len(members)))
        test_indices.append(members[:test_count])
        train_indices.append(members[test_count:])
    train_order = np.sort(np.concatenate(train_indices))
    test_order = np.sort(np.concatenate(test_indices))
    return image_set.subset(train_order), image_set.subset(test_order)
