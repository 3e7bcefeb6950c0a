"""PNG grids of uint8 images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from privgen.files import atomic_path


def tile(images: np.ndarray, columns: int, padding: int = 2) -> np.ndarray:
    """Lay out uint8 images (N x C x H x W) row by row into one H' x W' x C array with a white border."""
    count, channels, height, width = images.shape
    rows = max(1, -(-count // columns))
    canvas = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels), 255, dtype=np.uint8
    )
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        canvas[top : top + height, left : left + width] = image.transpose(1, 2, 0)
    return canvas


def save_grid(path: str | Path, images: np.ndarray, columns: int, scale: int = 2) -> None:
    """Write uint8 images as a PNG grid with `columns` per row, enlarged `scale` times, atomically."""
    canvas = tile(images, columns)
    picture = Image.fromarray(canvas[..., 0] if canvas.shape[2] == 1 else canvas)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    with atomic_path(path) as temporary:
        picture.save(temporary, format="PNG")
