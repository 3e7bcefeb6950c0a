"""Saving and loading of student weights with the metadata needed to rebuild the model."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from privgen.errors import PrivgenError
from privgen.files import save_torch
from privgen.students import build_student


def save_student(path: str | Path, name: str, model: nn.Module, image_shape, num_classes: int) -> None:
    save_torch(path, {"student": name, "image_shape": list(image_shape), "num_classes": num_classes, "state_dict": model.state_dict()})


def load_student(path: str | Path, device: torch.device) -> nn.Module:
    """Rebuild a student saved by `save_student`, in eval mode on `device`."""
    path = Path(path)
    if not path.is_file():
        raise PrivgenError(f"student weights {str(path)!r} are missing; run the train_students stage first (or `dvc repro`)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = build_student(state["student"], tuple(state["image_shape"]), state["num_classes"])
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError, OSError, EOFError) as error:
        raise PrivgenError(f"student weights {str(path)!r} are unreadable ({type(error).__name__}); rerun train_students") from None
    return model.to(device).eval()
