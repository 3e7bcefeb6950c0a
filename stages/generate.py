"""Stage generate: sample a class-balanced labelled artificial dataset from the teacher.

Reads models/teacher.pt. Writes data/artificial/train.npz in the prepared format and
plots/artificial_samples.png (one row per class).
"""

from __future__ import annotations

import logging
from typing import Annotated

import numpy as np
import typer

from privgen.data import ImageSet, load_image_set, save_image_set
from privgen.errors import PrivgenError
from privgen.images import save_grid
from privgen.runtime import resolve_device, seed_everything, start_stage, stage_errors
from privgen.sampling import balanced_labels, load_generator, sample

log = logging.getLogger("privgen.generate")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
GRID_COLUMNS = 10


@app.command()
def main(
    size: Annotated[int, typer.Option("--size", help="Artificial images to draw; 0 means as many as the real train split.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch_size", help="Images per generator forward pass.")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generator's noise.")] = 42,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")] = "auto",
    teacher: Annotated[str, typer.Option("--teacher", help="Teacher checkpoint.")] = "models/teacher.pt",
    train: Annotated[str, typer.Option("--train", help="Prepared real train split (only its size is read).")] = "data/prepared/train.npz",
    output: Annotated[str, typer.Option("--output", help="Artificial dataset (npz).")] = "data/artificial/train.npz",
    samples: Annotated[str, typer.Option("--samples", help="PNG grid of artificial images, one row per class.")] = "plots/artificial_samples.png",
) -> None:
    start_stage()
    with stage_errors():
        if size < 0:
            raise PrivgenError(f"generate.size is {size}; use a positive count, or 0 for the size of the real train split")
        if batch_size < 1:
            raise PrivgenError(f"generate.batch_size is {batch_size}; it must be a positive integer")
        run_device = resolve_device(device)
        seed_everything(seed)
        generator, state = load_generator(teacher, run_device)
        count = size or len(load_image_set(train))
        labels = np.sort(balanced_labels(count, len(state["class_names"])))
        log.info("drawing %d artificial images (%d classes) from a teacher trained %d iterations", count, len(state["class_names"]), state["iteration"])
        artificial = ImageSet(sample(generator, labels, seed, run_device, batch_size), labels, state["class_names"])
        save_image_set(output, artificial)
        first_per_class = np.concatenate([np.flatnonzero(labels == label)[:GRID_COLUMNS] for label in range(artificial.num_classes)])
        save_grid(samples, artificial.images[first_per_class], columns=GRID_COLUMNS)


if __name__ == "__main__":
    app()
