"""Image grids: a row read back from a labelled grid equals the grid of that row alone."""

import numpy as np
import pytest

from privgen.errors import PrivgenError
from privgen.images import grid_picture, read_labelled_row, save_labelled_rows


@pytest.mark.parametrize("channels, size, row_count", [(1, 28, 4), (3, 32, 3), (1, 7, 5)])
def test_labelled_row_round_trip(tmp_path, channels, size, row_count):
    rng = np.random.default_rng(channels + size)
    rows = [rng.integers(0, 256, (6, channels, size, size), dtype=np.uint8) for _ in range(row_count)]
    save_labelled_rows(tmp_path / "grid.png", rows, [f"row {index}" for index in range(row_count)])
    png = (tmp_path / "grid.png").read_bytes()
    for index, row in enumerate(rows):
        expected = np.asarray(grid_picture(row, columns=6))
        if channels == 1:
            expected = expected[..., None]
        np.testing.assert_array_equal(read_labelled_row(png, index, row_count), expected)


def test_labelled_row_wrong_row_count(tmp_path):
    rows = [np.zeros((6, 1, 28, 28), dtype=np.uint8)] * 4
    save_labelled_rows(tmp_path / "grid.png", rows, ["a", "b", "c", "d"])
    with pytest.raises(PrivgenError, match=r"^a 474 x 244 image has no row 0 of a labelled grid of 7 rows; regenerate it$"):
        read_labelled_row((tmp_path / "grid.png").read_bytes(), 0, 7)


def test_labelled_row_missing_row(tmp_path):
    rows = [np.zeros((6, 1, 28, 28), dtype=np.uint8)] * 4
    save_labelled_rows(tmp_path / "grid.png", rows, ["a", "b", "c", "d"])
    with pytest.raises(PrivgenError, match=r"has no row 4 of a labelled grid of 4 rows"):
        read_labelled_row((tmp_path / "grid.png").read_bytes(), 4, 4)


def test_labelled_row_undecodable_file():
    with pytest.raises(PrivgenError, match=r"^the labelled image grid cannot be read \(.*\); regenerate it with the stage that wrote it$"):
        read_labelled_row(b"not a PNG file", 0, 4)
