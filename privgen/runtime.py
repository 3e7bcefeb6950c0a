"""Process set-up shared by every stage: logging, seeding, device choice and error reporting."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import sys
from collections.abc import Iterator

import numpy as np
import torch
import typer

from privgen.errors import PrivgenError

log = logging.getLogger("privgen")


def start_stage() -> None:
    """Set up logging; the first call of every stage."""
    setup_logging()


@functools.cache
def console():
    """Return the rich console on stderr that log lines and progress bars share."""
    from rich.console import Console

    return Console(stderr=True)


def setup_logging() -> None:
    """Send privgen's log records to stderr, one line each: through rich on a terminal, plain otherwise.

    Plain lines keep logs captured by DVC, CI or a file unwrapped and greppable.
    """
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=console(), show_path=False, markup=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch, and ask PyTorch for deterministic kernels.

    On the CPU this makes a run repeat bit for bit on the same machine and thread count.
    CUDA kernels without a deterministic variant only warn, so GPU runs can differ slightly.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(name: str) -> torch.device:
    """Turn `auto`, `cpu`, `cuda` or `cuda:N` into a device, `auto` meaning CUDA when present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PrivgenError(f"device {name!r} was requested but CUDA is not available; set device to 'auto' or 'cpu'")
        return torch.device(name)
    raise PrivgenError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


@contextlib.contextmanager
def stage_errors() -> Iterator[None]:
    """Turn a PrivgenError into a one-line message on stderr and exit status 1."""
    try:
        yield
    except PrivgenError as error:
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(code=1) from None
