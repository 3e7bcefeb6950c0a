"""Stage extract_features: map the real train split and the artificial set into a feature space.

Reads data/prepared/train.npz and data/artificial/train.npz. Writes data/features/real.npy and
data/features/artificial.npy (float32, N x d), data/features/info.json (extractor and dimension)
and models/feature_extractor.pt (the extractor's name, and the classifier's weights for
`classifier`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from privgen.data import load_image_set
from privgen.features import EXTRACTORS, check_extractor, extract_features
from privgen.files import atomic_path, save_torch, write_json
from privgen.runtime import resolve_device, seed_everything, stage_errors, start_stage

log = logging.getLogger("privgen.extract_features")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def save_array(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, array)


@app.command()
def main(
    extractor: Annotated[str, typer.Option("--extractor", help=f"Feature extractor: {', '.join(EXTRACTORS)}.")] = "classifier",
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs of the classifier extractor.")] = 5,
    inception_weights: Annotated[str, typer.Option("--inception_weights", help="Local file of torchvision's Inception V3 ImageNet weights (inception only).")] = "",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the classifier's training.")] = 42,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")] = "auto",
    train: Annotated[str, typer.Option("--train", help="Prepared real train split.")] = "data/prepared/train.npz",
    artificial: Annotated[str, typer.Option("--artificial", help="Artificial dataset.")] = "data/artificial/train.npz",
    output_dir: Annotated[str, typer.Option("--output_dir", help="Folder for real.npy, artificial.npy and info.json.")] = "data/features",
    extractor_output: Annotated[str, typer.Option("--extractor_output", help="The extractor: its name and any weights.")] = "models/feature_extractor.pt",
) -> None:
    start_stage()
    with stage_errors():
        check_extractor(extractor)
        real_set = load_image_set(train)
        artificial_set = load_image_set(artificial)
        run_device = resolve_device(device)
        seed_everything(seed)
        real_features, artificial_features, description = extract_features(
            extractor, real_set, artificial_set, run_device, epochs=epochs, seed=seed, inception_weights=inception_weights
        )
        output = Path(output_dir)
        save_array(output / "real.npy", real_features)
        save_array(output / "artificial.npy", artificial_features)
        write_json(output / "info.json", {"extractor": extractor, "dimension": int(real_features.shape[1])})
        save_torch(extractor_output, description)
        log.info("%s features of dimension %d for %d real and %d artificial images", extractor, real_features.shape[1], len(real_features), len(artificial_features))


if __name__ == "__main__":
    app()
