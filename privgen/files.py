"""Output files written atomically, so a failed stage never leaves a half-written or emptied output."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from privgen.errors import PrivgenError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it over `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    os.close(handle)
    try:
        yield Path(temporary)
        # mkstemp creates the file as 0600; give it the permissions a plain open() would.
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a new empty folder beside `path`; swap it in for `path` only if the block succeeds.

    The swap is two renames: the previous folder moves aside, the new one takes its name, and
    only then is the previous one deleted. A crash between the two renames leaves no folder at
    `path` but the previous one intact as a hidden `.NAME.*.old` folder beside it.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise PrivgenError(f"output {str(target)!r} is a file, not a folder; delete it or choose another path")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".new"))
    try:
        yield temporary
        # mkdtemp creates the folder as 0700; give it the permissions a plain mkdir would.
        os.chmod(temporary, 0o777 & ~_current_umask())
        if target.exists():
            retired = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
            os.replace(target, retired)  # a folder may replace an empty folder on POSIX
            os.replace(temporary, target)
            shutil.rmtree(retired)
        else:
            os.replace(temporary, target)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, payload: dict) -> None:
    """Write `payload` as indented JSON with sorted keys, atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def save_torch(path: str | Path, payload) -> None:
    """Write `payload` with torch.save, atomically, with the same bytes for the same payload.

    torch.save names the archive's inner folder after the file it writes, so writing straight
    to a random temporary name would make every file differ. Serialising to memory first keeps
    the bytes reproducible, which DVC hashes rely on.
    """
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as temporary:
        temporary.write_bytes(buffer.getvalue())


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a data frame as CSV without its index, atomically."""
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)


def sha256_file(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_file(path: str | Path, produced_by: str) -> Path:
    """Return `path` if it is a file; otherwise raise an error that names the stage producing it."""
    path = Path(path)
    if not path.is_file():
        raise PrivgenError(f"input file {str(path)!r} is missing; run `{produced_by}` first (or `dvc repro`)")
    return path
