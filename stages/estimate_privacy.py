"""Stage estimate_privacy: bound the expected privacy loss mu of the artificial dataset at probability gamma.

Reads data/features/{real,artificial}.npy and info.json, and the two image sets for the figure.
Writes metrics/privacy.json, plots/privacy_loss_histogram.csv (a DVC plot),
plots/privacy_losses.png and plots/nearest_real.png (artificial images above their nearest real
training images in feature space).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from privgen.data import load_image_set
from privgen.errors import PrivgenError
from privgen.files import require_file, write_csv, write_json
from privgen.images import save_grid
from privgen.neighbours import nearest_neighbours
from privgen.plots import save_histogram
from privgen.privacy import estimate_privacy
from privgen.runtime import resolve_device, start_stage, stage_errors

log = logging.getLogger("privgen.estimate_privacy")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
HISTOGRAM_BINS = 30
PAIRS_PER_CLASS = 2


def load_features(path: str) -> np.ndarray:
    try:
        return np.load(require_file(path, "python -m stages.extract_features"), allow_pickle=False)
    except ValueError as error:
        raise PrivgenError(f"feature file {path!r} is not a readable .npy array ({error}); rerun extract_features") from None


def parse_neighbours(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise PrivgenError(f"privacy.neighbours is {value!r}; use a positive integer or 'auto'") from None


@app.command()
def main(
    neighbours: Annotated[str, typer.Option("--neighbours", help="Artificial points removed per real example (k), or 'auto' to calibrate k.")] = "auto",
    max_neighbours: Annotated[int, typer.Option("--max_neighbours", help="Largest k that 'auto' may choose.")] = 100,
    pairs: Annotated[int, typer.Option("--pairs", help="Random real examples T, one KL estimate each.")] = 1000,
    kl_k: Annotated[int, typer.Option("--kl_k", help="Neighbour order of the k-NN KL estimator.")] = 1,
    gamma: Annotated[float, typer.Option("--gamma", help="Probability that the expected privacy loss exceeds mu.")] = 1e-5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the choice of real examples.")] = 42,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N; used for neighbour search.")] = "auto",
    features_dir: Annotated[str, typer.Option("--features_dir", help="Folder with real.npy, artificial.npy and info.json.")] = "data/features",
    train: Annotated[str, typer.Option("--train", help="Prepared real train split (for the figure).")] = "data/prepared/train.npz",
    artificial: Annotated[str, typer.Option("--artificial", help="Artificial dataset (for the figure).")] = "data/artificial/train.npz",
    metrics: Annotated[str, typer.Option("--metrics", help="JSON file with mu, gamma and how they were estimated.")] = "metrics/privacy.json",
    histogram: Annotated[str, typer.Option("--histogram", help="CSV histogram of the per-pair losses.")] = "plots/privacy_loss_histogram.csv",
    histogram_png: Annotated[str, typer.Option("--histogram_png", help="PNG histogram of the per-pair losses.")] = "plots/privacy_losses.png",
    nearest_grid: Annotated[str, typer.Option("--nearest_grid", help="PNG of artificial images above their nearest real ones.")] = "plots/nearest_real.png",
) -> None:
    start_stage()
    with stage_errors():
        removed = parse_neighbours(neighbours)
        real_features = load_features(f"{features_dir}/real.npy")
        artificial_features = load_features(f"{features_dir}/artificial.npy")
        info = json.loads(require_file(Path(features_dir) / "info.json", "python -m stages.extract_features").read_text())
        real_set, artificial_set = load_image_set(train), load_image_set(artificial)
        if len(real_features) != len(real_set) or len(artificial_features) != len(artificial_set):
            raise PrivgenError("feature files do not match the image sets in length; rerun extract_features")
        run_device = resolve_device(device)
        log.info("estimating privacy: %s features (d = %d), k = %s, T = %d, kl_k = %d, gamma = %g", info["extractor"], info["dimension"], neighbours, pairs, kl_k, gamma)
        estimate = estimate_privacy(real_features, artificial_features, removed, pairs, kl_k, gamma, seed, max_neighbours, run_device)
        bound = estimate.bound
        log.info("mu = %.4g at gamma = %g (mean loss %.4g, upper semi-deviation %.4g, k = %d)", bound.mu, gamma, bound.mean, bound.semi_deviation, estimate.neighbours)

        # Figures: the loss histogram and artificial images beside their nearest real ones.
        counts, edges = np.histogram(estimate.losses, bins=HISTOGRAM_BINS)
        write_csv(histogram, pd.DataFrame({"loss": np.round((edges[:-1] + edges[1:]) / 2, 6), "pairs": counts}))
        save_histogram(histogram_png, estimate.losses, "privacy loss KL(P_A || P_A_r)", f"mu = {bound.mu:.3g} at gamma = {gamma:g}")
        shown = np.concatenate([np.flatnonzero(artificial_set.labels == label)[:PAIRS_PER_CLASS] for label in range(artificial_set.num_classes)])
        shown = shown.reshape(artificial_set.num_classes, -1).T.ravel()  # one row per draw, classes across
        nearest = nearest_neighbours(artificial_features[shown], real_features, 1, device=run_device)[1][:, 0]
        columns = artificial_set.num_classes
        rows = []
        for start in range(0, len(shown), columns):
            rows += [artificial_set.images[shown[start : start + columns]], real_set.images[nearest[start : start + columns]]]
        save_grid(nearest_grid, np.concatenate(rows), columns=columns)

        write_json(metrics, {
            "mu": bound.mu,
            "gamma": gamma,
            "mean_loss": bound.mean,
            "upper_semi_deviation": bound.semi_deviation,
            "pairs": bound.pairs,
            "neighbours": estimate.neighbours,
            "neighbours_setting": str(neighbours),
            "real_vs_artificial_kl": estimate.real_vs_artificial_kl,
            "kl_k": kl_k,
            "extractor": info["extractor"],
            "dimension": int(real_features.shape[1]),
            "finite_sample": {
                "mu": bound.finite_sample_mu,
                "min_gamma": bound.finite_sample_min_gamma,
                "mu_at_min_gamma": bound.finite_sample_mu_at_min_gamma,
            },
        })  # fmt: skip


if __name__ == "__main__":
    app()
