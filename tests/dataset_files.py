"""Writers of tiny dataset files in the on-disk formats that privgen.datasets reads."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

IDX_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.float32): 0x0D}

CELEBA_ATTRIBUTES = ["Male", "Smiling", "Young"]
# Test faces are 178 pixels wide and 218 high, so the central 128 x 128 crop starts at row
# (218 - 128) / 2 = 45 and column (178 - 128) / 2 = 25.
CELEBA_WIDTH, CELEBA_HEIGHT = 178, 218
CROP_TOP, CROP_LEFT, CROP = 45, 25, 128
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as an IDX file: magic number, big-endian uint32 sizes, big-endian values."""
    header = bytes([0, 0, IDX_TYPE_CODES[array.dtype], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = idx_bytes(array)
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def random_split(count: int, seed: int, size: int = 28, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images (N x size x size) and labels cycling through the classes."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, size, size), dtype=np.uint8)
    labels = (np.arange(count) % classes).astype(np.uint8)
    return images, labels


def write_idx_dataset(folder: Path, compress: bool, train_count: int = 30, test_count: int = 20) -> dict:
    """Write train and t10k IDX files as Debian's Fashion-MNIST package names them; return the arrays."""
    suffix = ".gz" if compress else ""
    arrays = {}
    for split, prefix, count, seed in (("train", "train", train_count, 1), ("test", "t10k", test_count, 2)):
        images, labels = random_split(count, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        arrays[split] = (images, labels)
    return arrays


def write_svhn_split(root: Path, split: str, images: np.ndarray, digits: np.ndarray) -> Path:
    """Write N x 3 x 32 x 32 images as SVHN's MATLAB file: X is 32 x 32 x 3 x N, y is N x 1 with 10 for digit 0."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{split}_32x32.mat"
    labels = np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]
    scipy.io.savemat(path, {"X": images.transpose(2, 3, 1, 0), "y": labels})
    return path


def svhn_images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)


def celeba_face(left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    """A 178 x 218 image: red outside the central 128 x 128 square, whose halves are `left` and `right`."""
    pixels = np.zeros((CELEBA_HEIGHT, CELEBA_WIDTH, 3), dtype=np.uint8)
    pixels[:] = RED
    middle = CROP_LEFT + CROP // 2
    pixels[CROP_TOP : CROP_TOP + CROP, CROP_LEFT:middle] = left
    pixels[CROP_TOP : CROP_TOP + CROP, middle : CROP_LEFT + CROP] = right
    return Image.fromarray(pixels)


def write_celeba(root: Path, entries: list[tuple[str, int, dict[str, int]]]) -> Path:
    """Write a CelebA folder in torchvision's layout; each entry is (file name, partition, attributes).

    Partition 0 is train, 1 validation and 2 test. Attributes missing from an entry are -1. PNG
    images are blue on the left and green on the right; JPEG images are the reverse.
    """
    folder = root / "celeba"
    images_folder = folder / "img_align_celeba"
    images_folder.mkdir(parents=True, exist_ok=True)
    for name, _, _ in entries:
        colours = (BLUE, GREEN) if name.endswith(".png") else (GREEN, BLUE)
        celeba_face(*colours).save(images_folder / name)

    count = len(entries)
    attribute_rows = [
        f"{name} " + " ".join(f"{attributes.get(attribute, -1):2d}" for attribute in CELEBA_ATTRIBUTES) for name, _, attributes in entries
    ]
    (folder / "list_attr_celeba.txt").write_text(f"{count}\n{' '.join(CELEBA_ATTRIBUTES)} \n" + "\n".join(attribute_rows) + "\n")
    (folder / "list_eval_partition.txt").write_text("".join(f"{name} {partition}\n" for name, partition, _ in entries))
    (folder / "identity_CelebA.txt").write_text("".join(f"{name} {index + 1}\n" for index, (name, _, _) in enumerate(entries)))
    (folder / "list_bbox_celeba.txt").write_text(
        f"{count}\nimage_id x_1 y_1 width height\n" + "".join(f"{name}  95  71 226 313\n" for name, _, _ in entries)
    )
    landmarks = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{count}\n{landmarks}\n" + "".join(f"{name} 69 109 106 113 77 142 73 152 108 154\n" for name, _, _ in entries)
    )
    return folder
