"""PNG files of uint8 images: grids for figures and single images for the release."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from privgen.errors import PrivgenError
from privgen.files import atomic_path


# White pixels around and between the images of a grid, before any enlargement.
PADDING = 2


def tile(images: np.ndarray, columns: int, padding: int = PADDING) -> np.ndarray:
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


def to_picture(pixels: np.ndarray) -> Image.Image:
    """Wrap a uint8 H x W x C array with 1 (grey) or 3 (RGB) channels as a PIL image."""
    channels = pixels.shape[2]
    if channels not in (1, 3):
        raise PrivgenError(f"images have {channels} channels; PNG output supports 1 (grey) or 3 (RGB)")
    return Image.fromarray(np.ascontiguousarray(pixels[..., 0] if channels == 1 else pixels))


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write one uint8 C x H x W image as a PNG of its own size, grey for 1 channel and RGB for 3.

    The file is written in place, not atomically: callers build such files inside a temporary
    folder (see `privgen.files.atomic_directory`).
    """
    to_picture(image.transpose(1, 2, 0)).save(path, format="PNG")


def grid_picture(images: np.ndarray, columns: int, scale: int = 2) -> Image.Image:
    """Lay out uint8 images as a grid with `columns` per row, enlarged `scale` times."""
    picture = to_picture(tile(images, columns))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    return picture


def save_grid(path: str | Path, images: np.ndarray, columns: int, scale: int = 2) -> None:
    """Write uint8 images as a PNG grid with `columns` per row, enlarged `scale` times, atomically."""
    picture = grid_picture(images, columns, scale)
    with atomic_path(path) as temporary:
        picture.save(temporary, format="PNG")


# Pixels left of the images in a labelled grid, where the row names go.
LABEL_WIDTH = 110


def read_labelled_row(png: bytes, row: int, row_count: int, scale: int = 2) -> np.ndarray:
    """Return row `row` of a PNG that `save_labelled_rows` wrote with `row_count` rows and `scale`, as H x W x C uint8.

    The row comes without its name and with the white border around its images.
    """
    try:
        picture = Image.open(io.BytesIO(png))
        picture.load()
    except (OSError, SyntaxError) as error:
        raise PrivgenError(f"the labelled image grid cannot be read ({error}); regenerate it with the stage that wrote it") from None
    # The grid is scale * (row_count * (image height + padding) + padding) pixels high.
    step, remainder = divmod(picture.height // scale - PADDING, row_count)
    if remainder or picture.height % scale or step <= PADDING or picture.width <= LABEL_WIDTH or not 0 <= row < row_count:
        raise PrivgenError(f"a {picture.width} x {picture.height} image has no row {row} of a labelled grid of {row_count} rows; regenerate it")
    top, bottom = scale * row * step, scale * ((row + 1) * step + PADDING)
    pixels = np.asarray(picture.crop((LABEL_WIDTH, top, picture.width, bottom)))
    return pixels[..., None] if pixels.ndim == 2 else pixels


def save_labelled_rows(path: str | Path, rows: list[np.ndarray], labels: list[str], scale: int = 2) -> None:
    """Write rows of uint8 images (each N x C x H x W, N the same for all) as a PNG grid, each row named at its left, atomically."""
    columns = len(rows[0])
    picture = grid_picture(np.concatenate(rows), columns, scale)
    labelled = Image.new(picture.mode, (picture.width + LABEL_WIDTH, picture.height), "white")
    labelled.paste(picture, (LABEL_WIDTH, 0))
    draw = ImageDraw.Draw(labelled)
    font = ImageFont.load_default()
    row_height = picture.height / len(rows)
    black = 0 if picture.mode == "L" else (0, 0, 0)
    for index, label in enumerate(labels):
        draw.text((4, (index + 0.5) * row_height), label, fill=black, font=font, anchor="lm")
    with atomic_path(path) as temporary:
        labelled.save(temporary, format="PNG")
