"""Output files written atomically, so a failed stage never leaves a half-written or emptied output."""

from __future__ import annotations

import contextlib
import json
import os
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


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, payload: dict) -> None:
    """Write `payload` as indented JSON with sorted keys, atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a data frame as CSV without its index, atomically."""
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)


def require_file(path: str | Path, produced_by: str) -> Path:
    """Return `path` if it is a file; otherwise raise an error that names the stage producing it."""
    path = Path(path)
    if not path.is_file():
        raise PrivgenError(f"input file {str(path)!r} is missing; run `{produced_by}` first (or `dvc repro`)")
    return path
