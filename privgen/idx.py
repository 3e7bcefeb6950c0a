"""Reader for IDX files, the format of the MNIST and Fashion-MNIST image and label files.

An IDX file starts with a 4-byte magic number: two zero bytes, a type code (0x08 for uint8) and
the number of dimensions. One big-endian uint32 per dimension follows, then the values in C
order, big-endian. The files may be gzip-compressed; the reader tells them apart by the gzip
magic bytes, not by the file name.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from privgen.errors import PrivgenError

GZIP_MAGIC = b"\x1f\x8b"
# Type codes of the third magic byte and the big-endian NumPy types they stand for.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
REPLACE_FILE = "replace it with an intact copy"


def read_idx(path: str | Path, remedy: str = REPLACE_FILE) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed, into an array of its declared type and shape.

    Raises PrivgenError for a missing file, an invalid magic number, a truncated file, extra bytes
    after the data or an unreadable gzip stream. `remedy` completes the message with the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise PrivgenError(f"IDX file {str(path)!r} is missing; {remedy}")
    try:
        with _open_idx(path) as stream:
            dtype, shape = _read_header(stream, path, remedy)
            expected_bytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
            # One byte more than declared shows whether the file carries trailing data.
            payload = stream.read(expected_bytes + 1)
    except EOFError:
        raise PrivgenError(f"IDX file {str(path)!r} is truncated: its gzip stream ends early; {remedy}") from None
    except (OSError, zlib.error) as error:
        raise PrivgenError(f"IDX file {str(path)!r} could not be read ({error}); {remedy}") from None
    if len(payload) < expected_bytes:
        raise PrivgenError(
            f"IDX file {str(path)!r} is truncated: its header declares shape {shape} ({expected_bytes} bytes of data) "
            f"but only {len(payload)} bytes follow; {remedy}"
        )
    if len(payload) > expected_bytes:
        raise PrivgenError(
            f"IDX file {str(path)!r} has more data than its header declares (shape {shape}, {expected_bytes} bytes); {remedy}"
        )
    values = np.frombuffer(payload[:expected_bytes], dtype=dtype).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def _open_idx(path: Path) -> BinaryIO:
    with open(path, "rb") as handle:
        compressed = handle.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_header(stream: BinaryIO, path: Path, remedy: str) -> tuple[np.dtype, tuple[int, ...]]:
    magic = stream.read(4)
    if len(magic) < 4:
        raise PrivgenError(f"IDX file {str(path)!r} contains only {len(magic)} bytes, fewer than the 4 of a magic number; {remedy}")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES or magic[3] == 0:
        raise PrivgenError(
            f"IDX file {str(path)!r} starts with magic number 0x{magic.hex()}, which is not an IDX header "
            f"(00 00, a type code among {', '.join(f'{code:02x}' for code in IDX_DTYPES)}, then the number of dimensions); {remedy}"
        )
    dimensions = stream.read(4 * magic[3])
    if len(dimensions) < 4 * magic[3]:
        raise PrivgenError(f"IDX file {str(path)!r} is truncated inside its header of {magic[3]} dimensions; {remedy}")
    shape = tuple(int(size) for size in np.frombuffer(dimensions, dtype=">u4"))
    return np.dtype(IDX_DTYPES[magic[2]]), shape
