import numpy as np
import pytest

from privgen.data import (
    ImageSet,
    images_to_tensor,
    load_image_set,
    save_image_set,
    stratified_split,
    tensor_to_images,
)
from privgen.errors import PrivgenError


def small_set(count=100, classes=4):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, 1, 8, 8), dtype=np.uint8)
    labels = np.arange(count, dtype=np.int64) % classes
    return ImageSet(images, labels, [f"c{index}" for index in range(classes)])


def test_stratified_split_is_seeded_and_disjoint():
    image_set = small_set()
    first_train, first_test = stratified_split(image_set, 0.25, seed=3)
    second_train, _ = stratified_split(image_set, 0.25, seed=3)
    other_train, _ = stratified_split(image_set, 0.25, seed=4)
    assert np.array_equal(first_train.images, second_train.images)
    assert not np.array_equal(first_train.images, other_train.images)
    assert len(first_train) + len(first_test) == len(image_set)


def test_image_set_round_trip(tmp_path):
    image_set = small_set()
    save_image_set(tmp_path / "set.npz", image_set)
    loaded = load_image_set(tmp_path / "set.npz")
    assert np.array_equal(loaded.images, image_set.images)
    assert np.array_equal(loaded.labels, image_set.labels)
    assert loaded.class_names == image_set.class_names


def test_load_missing_image_set(tmp_path):
    with pytest.raises(PrivgenError, match="missing"):
        load_image_set(tmp_path / "absent.npz")


def test_load_image_set_without_labels(tmp_path):
    np.savez(tmp_path / "set.npz", images=small_set().images, class_names=np.array(["a"]))
    with pytest.raises(PrivgenError, match="lacks the array"):
        load_image_set(tmp_path / "set.npz")


def test_load_image_set_with_float_images(tmp_path):
    image_set = small_set()
    np.savez(tmp_path / "set.npz", images=image_set.images.astype(np.float32), labels=image_set.labels, class_names=np.array(image_set.class_names))
    with pytest.raises(PrivgenError, match="dtype float32"):
        load_image_set(tmp_path / "set.npz")


def test_load_corrupt_image_set(tmp_path):
    (tmp_path / "set.npz").write_bytes(b"not a zip file")
    with pytest.raises(PrivgenError, match="not a readable npz"):
        load_image_set(tmp_path / "set.npz")


def test_pixel_scaling_round_trip():
    images = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    tensor = images_to_tensor(images)
    assert tensor.min() == -1
    assert tensor.max() == 1
    assert np.array_equal(tensor_to_images(tensor), images)
