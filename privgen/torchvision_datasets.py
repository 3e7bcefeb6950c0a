"""mnist, svhn and celeba read from a local folder by torchvision's dataset classes, with download=False.

torchvision (0.29.1) expects MNIST's unpacked IDX files under <root>/MNIST/raw, SVHN's
train_32x32.mat and test_32x32.mat in <root>, and CelebA's annotation files and
img_align_celeba/ under <root>/celeba. It compares the MD5 checksums of the SVHN files and of
the CelebA annotation files with its own table. privgen runs that comparison itself first, so
that the error names a missing or altered file, and so that data.skip_checksums can skip it for
an edited copy.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy.io.matlab import MatReadError
from torchvision.datasets import MNIST, SVHN, CelebA
from torchvision.datasets.utils import calculate_md5
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from privgen.data import ImageSet
from privgen.datasets import DIGITS, IDX_FILES, LAYOUTS, check_label_range, idx_image_set, stratified_subset_indices
from privgen.errors import PrivgenError
from privgen.idx import read_idx

log = logging.getLogger("privgen.datasets")

# Triastcyn and Faltings crop each CelebA face to 128 x 128 and then downscale it to 48 x 48.
CELEBA_CROP = 128
CELEBA_SIZE = 48

SOURCES = {
    "svhn": "http://ufldl.stanford.edu/housenumbers/",
    "celeba": "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
}


def load_mnist(root: Path) -> tuple[ImageSet, ImageSet]:
    """Read MNIST with torchvision from `root`/MNIST/raw, after checking each IDX file."""
    raw_folder = root / "MNIST" / "raw"
    splits = []
    for split, names in IDX_FILES.items():
        paths = []
        for name in names:
            path = raw_folder / name
            if not path.is_file():
                unpack = f"unpack {name}.gz there with gunzip; " if (raw_folder / f"{name}.gz").is_file() else ""
                raise PrivgenError(f"mnist file {str(path)!r} is missing; {unpack}data.root must contain {LAYOUTS['mnist']}")
            paths.append(path)
        # torchvision's reader stops on a damaged file with a bare assert or a reshape error, so
        # each file is read with privgen's checks first.
        images, labels = (read_idx(path, remedy="replace it with the original MNIST file") for path in paths)
        idx_image_set(images, labels, paths, DIGITS)
        dataset = MNIST(root, train=split == "train", download=False)
        splits.append(ImageSet(dataset.data.numpy()[:, None], dataset.targets.numpy().astype(np.int64), DIGITS))
    log.info("read mnist from %s", raw_folder)
    return splits[0], splits[1]


# SVHN and CelebA (torchvision with MD5 checks)


class _SVHNChecked(SVHN):
    """torchvision's SVHN that only checks that each file exists, because load_svhn checked its MD5 already."""

    split_list = {split: [url, filename, None] for split, (url, filename, _) in SVHN.split_list.items()}


class _CelebAChecked(CelebA):
    """torchvision's CelebA that only checks that each file exists, because load_celeba checked its MD5 already."""

    file_list = [(file_id, None, filename) for file_id, _, filename in CelebA.file_list]


def load_svhn(root: Path, skip_checksums: bool) -> tuple[ImageSet, ImageSet]:
    """Read SVHN's train and test .mat files with torchvision, which maps label 10 to digit 0."""
    checksums = {}
    for split in ("train", "test"):
        _, filename, md5 = SVHN.split_list[split]
        checksums[root / filename] = md5
    _check_files(checksums, "svhn", skip_checksums)
    splits = []
    for split in ("train", "test"):
        path = root / SVHN.split_list[split][1]
        try:
            dataset = _SVHNChecked(root, split=split, download=False)
        except (MatReadError, ValueError, KeyError, IndexError, TypeError, OSError, NotImplementedError, zlib.error) as error:
            raise PrivgenError(f"svhn file {str(path)!r} could not be read as SVHN's MATLAB file ({type(error).__name__}: {error}); replace it with the original file") from None
        images, labels = dataset.data, dataset.labels
        if images.dtype != np.uint8 or images.shape[1:] != (3, 32, 32):
            raise PrivgenError(
                f"svhn file {str(path)!r} contains X of dtype {images.dtype} and shape {images.shape} after torchvision's transpose; "
                "expected uint8 N x 3 x 32 x 32, so replace it with the original file"
            )
        if labels.shape != (len(images),):
            raise PrivgenError(
                f"svhn file {str(path)!r} contains {len(images)} images but labels of shape {labels.shape}; replace it with the original file"
            )
        check_label_range(labels, len(DIGITS), str(path))
        splits.append(ImageSet(np.ascontiguousarray(images), labels.astype(np.int64), DIGITS))
    log.info("read svhn from %s", root)
    return splits[0], splits[1]


def load_celeba(root: Path, attribute: str, limit: int, seed: int, skip_checksums: bool) -> tuple[ImageSet, ImageSet]:
    """Read CelebA's train and test partitions with torchvision, labelled by one binary attribute.

    Images are cropped to their central 128 x 128 and downscaled to 48 x 48. The validation
    partition is not used. With `limit`, only the chosen subset of images is decoded.
    """
    folder = root / CelebA.base_folder
    # torchvision needs only the unpacked images, not the zip archive they came in.
    annotations = {folder / filename: md5 for _, md5, filename in CelebA.file_list if not filename.endswith(".zip")}
    _check_files(annotations, "celeba", skip_checksums)
    if not (folder / "img_align_celeba").is_dir():
        raise PrivgenError(f"celeba folder {str(folder / 'img_align_celeba')!r} is missing; data.root must contain {LAYOUTS['celeba']}")

    splits = []
    for split in ("train", "test"):
        try:
            dataset = _CelebAChecked(root, split=split, target_type="attr", transform=crop_and_downscale, download=False)
        except (ValueError, IndexError, RuntimeError) as error:
            raise PrivgenError(
                f"celeba annotation files in {str(folder)!r} could not be read together ({error}); "
                "replace them with the original files, which list the same images in the same order"
            ) from None
        attribute_names = [name for name in dataset.attr_names if name]
        if attribute not in attribute_names:
            raise PrivgenError(f"data.celeba_attribute is {attribute!r}, which is not a CelebA attribute; choose one of {', '.join(attribute_names)}")
        labels = dataset.attr[:, dataset.attr_names.index(attribute)].numpy().astype(np.int64)
        indices = stratified_subset_indices(labels, limit, 2, seed)
        log.info("decoding %d celeba %s images", len(indices), split)
        images = np.empty((len(indices), 3, CELEBA_SIZE, CELEBA_SIZE), dtype=np.uint8)
        for position, index in enumerate(indices):
            image_path = folder / "img_align_celeba" / dataset.filename[index]
            try:
                images[position] = dataset[index][0]
            except FileNotFoundError:
                raise PrivgenError(f"celeba image {str(image_path)!r} is listed in list_eval_partition.txt but missing; restore it from the original archive") from None
            except (OSError, UnidentifiedImageError) as error:
                raise PrivgenError(f"celeba image {str(image_path)!r} is not a readable image ({type(error).__name__}); replace it with the original image") from None
        splits.append(ImageSet(images, labels[indices], [f"not_{attribute}", attribute]))
    log.info("read celeba from %s, labelled by %s", folder, attribute)
    return splits[0], splits[1]


def crop_and_downscale(image: Image.Image) -> np.ndarray:
    """Crop an image to its central 128 x 128 pixels, downscale it to 48 x 48 and return it as uint8 3 x H x W."""
    image = TF.center_crop(image.convert("RGB"), [CELEBA_CROP, CELEBA_CROP])
    image = TF.resize(image, [CELEBA_SIZE, CELEBA_SIZE], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return np.asarray(image).transpose(2, 0, 1)


# Checks of the folder


def _require_file(path: Path, name: str) -> None:
    if not path.is_file():
        raise PrivgenError(f"{name} file {str(path)!r} is missing; data.root must contain {LAYOUTS[name]}")


def _check_files(checksums: dict[Path, str], name: str, skip_checksums: bool) -> None:
    """Check that every file exists, then that each has the MD5 checksum of torchvision's table."""
    for path in checksums:
        _require_file(path, name)
    if skip_checksums:
        return
    for path, expected in checksums.items():
        actual = calculate_md5(path)
        if actual != expected:
            raise PrivgenError(
                f"{name} file {str(path)!r} has MD5 {actual}, not the {expected} that torchvision expects; "
                f"use the original file from {SOURCES[name]}, or set data.skip_checksums to true for an edited copy"
            )
