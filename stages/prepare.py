"""Stage prepare: read the private dataset's train and test splits.

Writes data/prepared/train.npz, data/prepared/test.npz (uint8 N x C x H x W, int64 labels, class
names) and metrics/data.json with the image count per class and split.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from privgen.data import save_image_set
from privgen.datasets import DATASETS, prepare_dataset
from privgen.files import write_json
from privgen.runtime import start_stage, stage_errors

log = logging.getLogger("privgen.prepare")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    dataset: Annotated[str, typer.Option("--dataset", help=f"Dataset name: {', '.join(DATASETS)}.")] = "mnist5k",
    root: Annotated[str, typer.Option("--root", help="Folder of mnist, svhn or celeba in torchvision's layout; for fashion_mnist, empty means Debian's /usr/share/datasets/fashion-mnist.")] = "",
    test_fraction: Annotated[float, typer.Option("--test_fraction", help="Share of each class held out as the real test split of mnist5k; the other datasets have their own test split.")] = 0.2,
    limit: Annotated[int, typer.Option("--limit", help="Images kept per split, a seeded stratified subset; 0 keeps all.")] = 0,
    celeba_attribute: Annotated[str, typer.Option("--celeba_attribute", help="CelebA attribute that labels the images, for example Smiling.")] = "Smiling",
    skip_checksums: Annotated[bool, typer.Option("--skip_checksums", help="Skip the MD5 checks of svhn and celeba files, for edited copies.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the mnist5k split and of the subsets that limit takes.")] = 42,
    output_dir: Annotated[str, typer.Option("--output_dir", help="Folder for train.npz and test.npz.")] = "data/prepared",
    metrics: Annotated[str, typer.Option("--metrics", help="JSON file for the counts per class and split.")] = "metrics/data.json",
) -> None:
    start_stage()
    with stage_errors():
        log.info("preparing %s (root %r, limit %d, seed %d)", dataset, root, limit, seed)
        train_set, test_set = prepare_dataset(
            dataset,
            test_fraction,
            seed,
            root=root,
            limit=limit,
            celeba_attribute=celeba_attribute,
            skip_checksums=skip_checksums,
        )
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
