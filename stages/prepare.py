"""Stage prepare: load the private dataset and split it into train and test.

Writes data/prepared/train.npz, data/prepared/test.npz (uint8 N x C x H x W, int64 labels, class
names) and metrics/data.json with the image count per class and split.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from privgen.data import DATASETS, prepare_dataset, save_image_set
from privgen.files import write_json
from privgen.runtime import start_stage, stage_errors

log = logging.getLogger("privgen.prepare")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    dataset: Annotated[str, typer.Option("--dataset", help=f"Dataset name: {', '.join(DATASETS)}.")] = "mnist5k",
    test_fraction: Annotated[float, typer.Option("--test_fraction", help="Share of each class held out as the real test split.")] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stratified split.")] = 42,
    output_dir: Annotated[str, typer.Option("--output_dir", help="Folder for train.npz and test.npz.")] = "data/prepared",
    metrics: Annotated[str, typer.Option("--metrics", help="JSON file for the counts per class and split.")] = "metrics/data.json",
) -> None:
    start_stage()
    with stage_errors():
        log.info("preparing %s with test fraction %s and seed %d", dataset, test_fraction, seed)
        train_set, test_set = prepare_dataset(dataset, test_fraction, seed)
        save_image_set(f"{output_dir}/train.npz", train_set)
        save_image_set(f"{output_dir}/test.npz", test_set)
        summary = {
            "dataset": dataset,
            "image_shape": list(train_set.image_shape),
            "num_classes": train_set.num_classes,
            "train": {"total": len(train_set), "per_class": train_set.counts_per_class()},
            "test": {"total": len(test_set), "per_class": test_set.counts_per_class()},
        }
        write_json(metrics, summary)
        log.info("wrote %d train and %d test images of shape %s", len(train_set), len(test_set), train_set.image_shape)


if __name__ == "__main__":
    app()
