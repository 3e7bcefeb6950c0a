import gzip

import numpy as np
import pytest

from dataset_files import idx_bytes, write_idx
from privgen.errors import PrivgenError
from privgen.idx import read_idx


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    values = read_idx(write_idx(tmp_path / "images", images, compress))
    assert values.dtype == np.uint8
    assert values.shape == (5, 4, 3)
    assert np.array_equal(values, images)


def test_read_idx_big_endian_int16(tmp_path):
    values = np.array([[1, -2], [300, -30000]], dtype=np.int16)
    path = write_idx(tmp_path / "values", values, compress=False)
    # Big-endian on disk: 300 is stored as 0x01 0x2c.
    assert path.read_bytes()[12 + 4 : 12 + 6] == b"\x01\x2c"
    assert np.array_equal(read_idx(path), values)


def test_read_idx_rejects_bad_magic(tmp_path):
    payload = bytearray(idx_bytes(np.zeros((2, 2, 2), dtype=np.uint8)))
    payload[2] = 0x42  # no such type code
    (tmp_path / "images").write_bytes(bytes(payload))
    with pytest.raises(PrivgenError, match=r"magic number 0x00004203, which is not an IDX header.*intact copy"):
        read_idx(tmp_path / "images")


def test_read_idx_rejects_gzip_of_text(tmp_path):
    (tmp_path / "images.gz").write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(PrivgenError, match=r"magic number 0x3c68746d"):
        read_idx(tmp_path / "images.gz")


def test_read_idx_rejects_truncated_plain_file(tmp_path):
    payload = idx_bytes(np.zeros((10, 4, 4), dtype=np.uint8))
    (tmp_path / "images").write_bytes(payload[:-7])
    with pytest.raises(PrivgenError, match=r"truncated: its header declares shape \(10, 4, 4\) \(160 bytes of data\) but only 153"):
        read_idx(tmp_path / "images")


def test_read_idx_rejects_truncated_gzip_file(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8).reshape(2, 10, 10)))
    (tmp_path / "images.gz").write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(PrivgenError, match="truncated: its gzip stream ends early"):
        read_idx(tmp_path / "images.gz")


def test_read_idx_rejects_truncated_header(tmp_path):
    (tmp_path / "images").write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2]))
    with pytest.raises(PrivgenError, match="truncated inside its header of 3 dimensions"):
        read_idx(tmp_path / "images")


def test_read_idx_rejects_trailing_bytes(tmp_path):
    (tmp_path / "labels").write_bytes(idx_bytes(np.zeros(4, dtype=np.uint8)) + b"\x00")
    with pytest.raises(PrivgenError, match=r"more data than its header declares \(shape \(4,\), 4 bytes\)"):
        read_idx(tmp_path / "labels")


def test_read_idx_missing_file_names_remedy(tmp_path):
    with pytest.raises(PrivgenError, match="is missing; reinstall the package"):
        read_idx(tmp_path / "absent", remedy="reinstall the package")
