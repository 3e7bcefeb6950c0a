"""Atomic output folders and single-image PNG files."""

import io

import numpy as np
import pytest
from PIL import Image

from privgen.errors import PrivgenError
from privgen.files import atomic_directory
from privgen.images import save_png


def test_atomic_directory_replaces_folder_on_success(tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as folder:
        (folder / "new.txt").write_text("new")
        assert (target / "old.txt").exists()  # the previous folder stays until the block succeeds
    assert [path.name for path in target.iterdir()] == ["new.txt"]
    assert [path.name for path in tmp_path.iterdir()] == ["bundle"]


def test_atomic_directory_keeps_folder_on_failure(tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as folder:
            (folder / "half.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert [path.name for path in target.iterdir()] == ["old.txt"]
    assert [path.name for path in tmp_path.iterdir()] == ["bundle"]


def test_atomic_directory_rejects_file_target(tmp_path):
    (tmp_path / "bundle").write_text("a file")
    with pytest.raises(PrivgenError, match="is a file, not a folder"):
        with atomic_directory(tmp_path / "bundle"):
            pass


def test_png_keeps_grey_and_rgb_pixels(tmp_path):
    rng = np.random.default_rng(0)
    for channels, mode in ((1, "L"), (3, "RGB")):
        image = rng.integers(0, 256, size=(channels, 5, 7), dtype=np.uint8)
        save_png(tmp_path / "image.png", image)
        picture = Image.open(io.BytesIO((tmp_path / "image.png").read_bytes()))
        assert picture.mode == mode
        assert picture.size == (7, 5)
        assert np.array_equal(np.asarray(picture).reshape(5, 7, channels).transpose(2, 0, 1), image)
    with pytest.raises(PrivgenError, match="2 channels"):
        save_png(tmp_path / "image.png", np.zeros((2, 5, 7), dtype=np.uint8))
