"""Sampling from a trained teacher: rebuild its generator and draw labelled images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from privgen.data import tensor_to_images
from privgen.gan import NOISE_DIM, Generator
from privgen.teacher import TeacherConfig, build_networks, load_checkpoint


def load_generator(path: str | Path, device: torch.device) -> tuple[Generator, dict]:
    """Rebuild the trained generator from a checkpoint; return it in eval mode with the checkpoint's metadata."""
    state = load_checkpoint(path)
    config = TeacherConfig(**state["config"])
    generator, _ = build_networks(config, len(state["class_names"]), tuple(state["image_shape"]))
    generator.load_state_dict(state["generator"])
    generator.to(device).eval()
    return generator, state


@torch.no_grad()
def sample(generator: Generator, labels: np.ndarray, seed: int, device: torch.device, batch_size: int = 500) -> np.ndarray:
    """Draw one uint8 image per label from the generator with noise seeded by `seed`."""
    noise_rng = torch.Generator().manual_seed(seed)
    batches = []
    for start in range(0, len(labels), batch_size):
        batch_labels = torch.from_numpy(labels[start : start + batch_size]).to(device)
        noise = torch.randn(len(batch_labels), NOISE_DIM, generator=noise_rng).to(device)
        batches.append(tensor_to_images(generator(noise, batch_labels)))
    if not batches:
        raise ValueError("no labels to sample")
    return np.concatenate(batches)


def balanced_labels(count: int, num_classes: int) -> np.ndarray:
    """Return `count` labels cycling through the classes, so every class gets count/num_classes (rounded)."""
    return np.arange(count, dtype=np.int64) % num_classes
