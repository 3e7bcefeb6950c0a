import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import SVHN

from dataset_files import (
    BLUE,
    CROP,
    CROP_LEFT,
    CROP_TOP,
    GREEN,
    celeba_face,
    random_split,
    svhn_images,
    write_celeba,
    write_idx,
    write_idx_dataset,
    write_svhn_split,
)
from privgen.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    limit_image_set,
    prepare_dataset,
    stratified_subset_indices,
)
from privgen.data import ImageSet
from privgen.errors import PrivgenError

FASHION_MNIST_INSTALLED = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()


# Pooled mnist5k and shared settings


def test_prepare_mnist5k_split_sizes():
    train, test = prepare_dataset("mnist5k", 0.2, seed=1)
    assert len(train) == 4000
    assert len(test) == 1000
    assert set(train.counts_per_class().values()) == {400}
    assert set(test.counts_per_class().values()) == {100}
    assert train.images.dtype == np.uint8
    assert train.images.shape[1:] == (1, 28, 28)


def test_unknown_dataset_names_choices():
    with pytest.raises(PrivgenError, match="unknown dataset 'mnits'; choose one of mnist5k, fashion_mnist, mnist, svhn, celeba"):
        prepare_dataset("mnits", 0.2, seed=0)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.2, float("nan")])
def test_pooled_test_fraction_out_of_range(fraction):
    with pytest.raises(PrivgenError, match=rf"data.test_fraction is {fraction}; mnist5k needs a share in \(0, 1\)"):
        prepare_dataset("mnist5k", fraction, seed=0)


def test_test_fraction_unused_with_own_split(tmp_path):
    write_idx_dataset(tmp_path, compress=True)
    train, test = prepare_dataset("fashion_mnist", 1.5, seed=0, root=tmp_path)
    assert (len(train), len(test)) == (30, 20)


def test_negative_limit_rejected():
    with pytest.raises(PrivgenError, match="data.limit is -5; use 0 for every image"):
        prepare_dataset("mnist5k", 0.2, seed=0, limit=-5)


def test_limit_below_class_count_rejected():
    with pytest.raises(PrivgenError, match="data.limit is 4, fewer than the 10 classes"):
        prepare_dataset("mnist5k", 0.2, seed=0, limit=4)


# Stratified subsets


def test_subset_keeps_class_shares():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    indices = stratified_subset_indices(labels, 10, 3, seed=0)
    assert list(np.bincount(labels[indices])) == [5, 3, 2]
    assert np.all(np.diff(indices) > 0)


def test_subset_keeps_every_class():
    labels = np.repeat(np.arange(3), [97, 2, 1])
    indices = stratified_subset_indices(labels, 5, 3, seed=0)
    assert list(np.bincount(labels[indices], minlength=3)) == [3, 1, 1]


def test_subset_is_seeded():
    labels = np.arange(200) % 4
    first = stratified_subset_indices(labels, 20, 4, seed=7)
    again = stratified_subset_indices(labels, 20, 4, seed=7)
    other = stratified_subset_indices(labels, 20, 4, seed=8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert len(first) == 20


def test_limit_at_or_above_size_keeps_set():
    image_set = ImageSet(np.zeros((6, 1, 2, 2), np.uint8), np.arange(6) % 2, ["a", "b"])
    assert limit_image_set(image_set, 6, seed=0) is image_set
    assert limit_image_set(image_set, 0, seed=0) is image_set


def test_mnist5k_limit_applies_per_split():
    train, test = prepare_dataset("mnist5k", 0.2, seed=1, limit=300)
    assert len(train) == 300
    assert len(test) == 300
    assert set(train.counts_per_class().values()) == {30}


# Fashion-MNIST


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reads_idx_files(tmp_path, compress):
    arrays = write_idx_dataset(tmp_path, compress)
    train, test = prepare_dataset("fashion_mnist", seed=0, root=tmp_path)
    for image_set, (images, labels) in ((train, arrays["train"]), (test, arrays["test"])):
        assert image_set.images.shape == (len(images), 1, 28, 28)
        assert np.array_equal(image_set.images[:, 0], images)
        assert np.array_equal(image_set.labels, labels)
        assert image_set.labels.dtype == np.int64
    assert train.class_names == FASHION_MNIST_CLASSES


def test_fashion_mnist_count_mismatch(tmp_path):
    write_idx_dataset(tmp_path, compress=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(29, dtype=np.uint8), compress=True)
    with pytest.raises(PrivgenError, match=r"train-images-idx3-ubyte.gz' \(30 images\) and .*train-labels-idx1-ubyte.gz' \(29 labels\) differ in length"):
        prepare_dataset("fashion_mnist", root=tmp_path)


def test_fashion_mnist_truncated_images(tmp_path):
    write_idx_dataset(tmp_path, compress=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(PrivgenError, match=r"t10k-images-idx3-ubyte' is truncated.*set data.root to a folder containing"):
        prepare_dataset("fashion_mnist", root=tmp_path)


def test_fashion_mnist_corrupt_magic(tmp_path):
    write_idx_dataset(tmp_path, compress=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"\x00\x00\x00\x00" * 4)
    with pytest.raises(PrivgenError, match="train-labels-idx1-ubyte.gz' starts with magic number 0x00000000"):
        prepare_dataset("fashion_mnist", root=tmp_path)


def test_fashion_mnist_labels_are_images(tmp_path):
    write_idx_dataset(tmp_path, compress=True)
    images, _ = random_split(30, seed=1)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", images, compress=True)
    with pytest.raises(PrivgenError, match=r"train-labels-idx1-ubyte.gz' contains uint8 values of shape \(30, 28, 28\); expected N uint8 labels"):
        prepare_dataset("fashion_mnist", root=tmp_path)


def test_fashion_mnist_label_out_of_range(tmp_path):
    write_idx_dataset(tmp_path, compress=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(20, 12, dtype=np.uint8), compress=True)
    with pytest.raises(PrivgenError, match=r"contains labels from 12 to 12, outside 0..9"):
        prepare_dataset("fashion_mnist", root=tmp_path)


def test_fashion_mnist_missing_file(tmp_path):
    write_idx_dataset(tmp_path, compress=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(PrivgenError, match=r"t10k-labels-idx1-ubyte' \(or t10k-labels-idx1-ubyte.gz\) is missing; set data.root to a folder containing"):
        prepare_dataset("fashion_mnist", root=tmp_path)


@pytest.mark.skipif(not FASHION_MNIST_INSTALLED, reason="Debian's package dataset-fashion-mnist is not installed")
def test_fashion_mnist_debian_package():
    train, test = prepare_dataset("fashion_mnist", seed=0)
    assert train.images.shape == (60000, 1, 28, 28)
    assert test.images.shape == (10000, 1, 28, 28)
    assert set(train.counts_per_class().values()) == {6000}
    assert set(test.counts_per_class().values()) == {1000}
    assert train.class_names == FASHION_MNIST_CLASSES
    assert train.class_names[9] == "Ankle boot"
    # Real images are mostly dark background with bright garments, not noise.
    assert 50 < train.images.mean() < 100
    assert train.images.max() == 255


@pytest.mark.skipif(not FASHION_MNIST_INSTALLED, reason="Debian's package dataset-fashion-mnist is not installed")
def test_fashion_mnist_debian_package_limit():
    train, test = prepare_dataset("fashion_mnist", seed=0, limit=500)
    assert set(train.counts_per_class().values()) == {50}
    assert set(test.counts_per_class().values()) == {50}


# MNIST in torchvision's layout


def test_mnist_reads_torchvision_layout(tmp_path):
    arrays = write_idx_dataset(tmp_path / "MNIST" / "raw", compress=False)
    train, test = prepare_dataset("mnist", seed=0, root=tmp_path)
    assert np.array_equal(train.images[:, 0], arrays["train"][0])
    assert np.array_equal(test.labels, arrays["test"][1])
    assert train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    assert train.class_names == [str(digit) for digit in range(10)]


def test_mnist_gzip_only_says_unpack(tmp_path):
    write_idx_dataset(tmp_path / "MNIST" / "raw", compress=True)
    with pytest.raises(PrivgenError, match="train-images-idx3-ubyte' is missing; unpack train-images-idx3-ubyte.gz there with gunzip"):
        prepare_dataset("mnist", root=tmp_path)


def test_mnist_empty_folder_names_layout(tmp_path):
    with pytest.raises(PrivgenError, match=r"MNIST/raw/train-images-idx3-ubyte' is missing; data.root must contain MNIST/raw/\{train,t10k\}"):
        prepare_dataset("mnist", root=tmp_path)


def test_mnist_corrupt_magic(tmp_path):
    write_idx_dataset(tmp_path / "MNIST" / "raw", compress=False)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(b"\x08\x03" + path.read_bytes()[2:])
    with pytest.raises(PrivgenError, match="t10k-images-idx3-ubyte' starts with magic number 0x0803"):
        prepare_dataset("mnist", root=tmp_path)


def test_mnist_count_mismatch(tmp_path):
    write_idx_dataset(tmp_path / "MNIST" / "raw", compress=False)
    write_idx(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.zeros(21, dtype=np.uint8), compress=False)
    with pytest.raises(PrivgenError, match=r"\(20 images\) and .* \(21 labels\) differ in length"):
        prepare_dataset("mnist", root=tmp_path)


@pytest.mark.parametrize("root,message", [("", "data.root is empty; mnist needs the folder"), ("/nonexistent/privgen", "data.root '/nonexistent/privgen' is not a folder")])
def test_mnist_root_unset_or_absent(root, message):
    with pytest.raises(PrivgenError, match=message):
        prepare_dataset("mnist", root=root)


# SVHN in torchvision's layout


@pytest.fixture
def svhn_root(tmp_path) -> Path:
    write_svhn_split(tmp_path, "train", svhn_images(12, seed=0), np.arange(12) % 10)
    write_svhn_split(tmp_path, "test", svhn_images(5, seed=1), np.array([0, 0, 3, 9, 1]))
    return tmp_path


def test_svhn_reads_mat_files(svhn_root):
    train, test = prepare_dataset("svhn", seed=0, root=svhn_root, skip_checksums=True)
    assert train.images.shape == (12, 3, 32, 32)
    assert np.array_equal(train.images, svhn_images(12, seed=0))
    # SVHN stores digit 0 as label 10; torchvision maps it back to 0.
    assert list(test.labels) == [0, 0, 3, 9, 1]
    assert train.labels.dtype == np.int64
    assert test.class_names == [str(digit) for digit in range(10)]


def test_svhn_checksum_mismatch(svhn_root):
    with pytest.raises(PrivgenError, match="train_32x32.mat' has MD5 [0-9a-f]{32}, not the e26dedcc434d2e4c54c9b2d4a06d8373 that torchvision expects.*data.skip_checksums"):
        prepare_dataset("svhn", root=svhn_root)


def test_svhn_checksum_match_passes(svhn_root, monkeypatch):
    # Point torchvision's checksum table at these files, so the check runs and finds them intact.
    table = {split: list(entry) for split, entry in SVHN.split_list.items()}
    for split in ("train", "test"):
        table[split][2] = hashlib.md5((svhn_root / f"{split}_32x32.mat").read_bytes()).hexdigest()
    monkeypatch.setattr(SVHN, "split_list", table)
    train, test = prepare_dataset("svhn", root=svhn_root)
    assert (len(train), len(test)) == (12, 5)


def test_svhn_count_mismatch(tmp_path):
    import scipy.io

    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": svhn_images(4, seed=0).transpose(2, 3, 1, 0), "y": np.ones((3, 1), np.uint8)})
    write_svhn_split(tmp_path, "test", svhn_images(2, seed=1), np.array([1, 2]))
    with pytest.raises(PrivgenError, match=r"train_32x32.mat' contains 4 images but labels of shape \(3,\)"):
        prepare_dataset("svhn", root=tmp_path, skip_checksums=True)


def test_svhn_truncated_file(svhn_root):
    path = svhn_root / "test_32x32.mat"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(PrivgenError, match="test_32x32.mat' could not be read as SVHN's MATLAB file"):
        prepare_dataset("svhn", root=svhn_root, skip_checksums=True)


def test_svhn_missing_test_file(svhn_root):
    (svhn_root / "test_32x32.mat").unlink()
    with pytest.raises(PrivgenError, match=r"svhn file .*test_32x32.mat' is missing; data.root must contain train_32x32.mat and test_32x32.mat \(torchvision's SVHN layout\)"):
        prepare_dataset("svhn", root=svhn_root)


# CelebA in torchvision's layout

# (file name, partition, attributes): partition 0 is train, 1 validation, 2 test.
CELEBA_ENTRIES = [
    ("000001.png", 0, {"Smiling": 1}),
    ("000002.jpg", 0, {"Smiling": -1}),
    ("000003.png", 0, {"Smiling": -1, "Male": 1}),
    ("000004.png", 1, {"Smiling": 1}),
    ("000005.jpg", 2, {"Smiling": 1}),
    ("000006.png", 2, {"Smiling": -1, "Male": 1}),
    ("000007.png", 0, {"Smiling": 1, "Male": 1}),
]


@pytest.fixture
def celeba_root(tmp_path) -> Path:
    write_celeba(tmp_path, CELEBA_ENTRIES)
    return tmp_path


def test_celeba_splits_and_labels(celeba_root):
    train, test = prepare_dataset("celeba", seed=0, root=celeba_root, skip_checksums=True)
    # The validation partition (000004) is in neither split.
    assert list(train.labels) == [1, 0, 0, 1]
    assert list(test.labels) == [1, 0]
    assert train.class_names == ["not_Smiling", "Smiling"]


def test_celeba_crop_and_downscale(celeba_root):
    train, test = prepare_dataset("celeba", seed=0, root=celeba_root, skip_checksums=True)
    assert train.images.shape == (4, 3, 48, 48)
    assert train.images.dtype == np.uint8
    # PNG faces are blue left and green right inside the crop, red outside it: no red may remain.
    face = train.images[0]
    assert tuple(face[:, 0, 0]) == BLUE
    assert tuple(face[:, 47, 21]) == BLUE
    assert tuple(face[:, 0, 26]) == GREEN
    assert tuple(face[:, 47, 47]) == GREEN
    # The same central crop and bilinear downscale done by PIL directly.
    box = (CROP_LEFT, CROP_TOP, CROP_LEFT + CROP, CROP_TOP + CROP)
    expected = np.asarray(celeba_face(BLUE, GREEN).crop(box).resize((48, 48), Image.BILINEAR)).transpose(2, 0, 1)
    assert np.array_equal(face, expected)
    # JPEG faces are the reverse, up to compression error.
    jpeg_face = test.images[0].astype(int)
    assert jpeg_face[1, 20:28, 2:10].mean() > 200
    assert jpeg_face[2, 20:28, 2:10].mean() < 50
    assert jpeg_face[2, 20:28, 38:46].mean() > 200
    assert jpeg_face[1, 20:28, 38:46].mean() < 50


def test_celeba_other_attribute(celeba_root):
    train, _ = prepare_dataset("celeba", seed=0, root=celeba_root, celeba_attribute="Male", skip_checksums=True)
    assert list(train.labels) == [0, 0, 1, 1]
    assert train.class_names == ["not_Male", "Male"]


def test_celeba_unknown_attribute(celeba_root):
    with pytest.raises(PrivgenError, match="data.celeba_attribute is 'smiling', which is not a CelebA attribute; choose one of Male, Smiling, Young"):
        prepare_dataset("celeba", root=celeba_root, celeba_attribute="smiling", skip_checksums=True)


def test_celeba_limit_decodes_only_subset(celeba_root):
    train_names = ["000001.png", "000002.jpg", "000003.png", "000007.png"]
    train_labels = np.array([1, 0, 0, 1])
    chosen = stratified_subset_indices(train_labels, 2, 2, seed=5)
    # Unreadable images outside the chosen subset must not matter, because they are never decoded.
    for index in set(range(4)) - set(chosen):
        (celeba_root / "celeba" / "img_align_celeba" / train_names[index]).write_bytes(b"not an image")
    train, test = prepare_dataset("celeba", seed=5, root=celeba_root, limit=2, skip_checksums=True)
    assert sorted(train.labels) == [0, 1]
    assert list(train.labels) == list(train_labels[chosen])
    assert len(test) == 2


def test_celeba_unreadable_image(celeba_root):
    (celeba_root / "celeba" / "img_align_celeba" / "000006.png").write_bytes(b"not an image")
    with pytest.raises(PrivgenError, match=r"celeba image .*000006.png' is not a readable image \(UnidentifiedImageError\)"):
        prepare_dataset("celeba", root=celeba_root, skip_checksums=True)


def test_celeba_missing_image(celeba_root):
    (celeba_root / "celeba" / "img_align_celeba" / "000005.jpg").unlink()
    with pytest.raises(PrivgenError, match="000005.jpg' is listed in list_eval_partition.txt but missing"):
        prepare_dataset("celeba", root=celeba_root, skip_checksums=True)


@pytest.mark.parametrize("filename", ["list_eval_partition.txt", "identity_CelebA.txt", "list_landmarks_align_celeba.txt"])
def test_celeba_missing_annotation(celeba_root, filename):
    (celeba_root / "celeba" / filename).unlink()
    with pytest.raises(PrivgenError, match=rf"celeba file .*{filename}' is missing; data.root must contain celeba/ with img_align_celeba/\*.jpg"):
        prepare_dataset("celeba", root=celeba_root, skip_checksums=True)


def test_celeba_missing_image_folder(celeba_root):
    shutil.rmtree(celeba_root / "celeba" / "img_align_celeba")
    with pytest.raises(PrivgenError, match="celeba folder .*img_align_celeba' is missing"):
        prepare_dataset("celeba", root=celeba_root, skip_checksums=True)


def test_celeba_annotation_row_mismatch(celeba_root):
    path = celeba_root / "celeba" / "list_attr_celeba.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(PrivgenError, match="celeba annotation files in .* could not be read together"):
        prepare_dataset("celeba", root=celeba_root, skip_checksums=True)


def test_celeba_checksum_mismatch(celeba_root):
    with pytest.raises(PrivgenError, match="list_attr_celeba.txt' has MD5 [0-9a-f]{32}, not the 75e246fa4810816ffd6ee81facbd244c"):
        prepare_dataset("celeba", root=celeba_root)
