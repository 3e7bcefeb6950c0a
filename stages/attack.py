"""Stage attack: model inversion against the MLP students trained on real and on artificial data.

Reads data/prepared/train.npz and models/students/mlp_{real,artificial}.pt. Writes
metrics/attack.json (per class and on average: the RMS pixel distance of each reconstruction
to the nearest real training image of its class and to the class mean) and
plots/inversion.png (rows: real class examples, then reconstructions from each model).
"""

from __future__ import annotations

import logging
from typing import Annotated

import numpy as np
import typer

from privgen.attacks import InversionConfig, class_examples, invert_all_classes, reconstruction_distances
from privgen.checkpoints import load_student
from privgen.data import load_image_set, tensor_to_images
from privgen.files import write_json
from privgen.images import save_grid
from privgen.runtime import resolve_device, seed_everything, start_stage, stage_errors

log = logging.getLogger("privgen.attack")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
defaults = InversionConfig()
TARGETS = ("real", "artificial")


@app.command()
def main(
    max_steps: Annotated[int, typer.Option("--max_steps", help="Most gradient steps per class.")] = defaults.max_steps,
    learning_rate: Annotated[float, typer.Option("--learning_rate", help="Step size on the input (pixels in [-1, 1]).")] = defaults.learning_rate,
    window: Annotated[int, typer.Option("--window", help="Stop when the cost has not improved over this many steps.")] = defaults.window,
    cost_threshold: Annotated[float, typer.Option("--cost_threshold", help="Stop when 1 - p(target) falls below this.")] = defaults.cost_threshold,
    seed: Annotated[int, typer.Option("--seed", help="Global seed.")] = 42,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")] = "auto",
    train: Annotated[str, typer.Option("--train", help="Prepared real train split.")] = "data/prepared/train.npz",
    models_dir: Annotated[str, typer.Option("--models_dir", help="Folder with mlp_real.pt and mlp_artificial.pt.")] = "models/students",
    metrics: Annotated[str, typer.Option("--metrics", help="JSON file with the reconstruction distances.")] = "metrics/attack.json",
    grid: Annotated[str, typer.Option("--grid", help="PNG grid: real examples, then one row of reconstructions per model.")] = "plots/inversion.png",
) -> None:
    start_stage()
    with stage_errors():
        config = InversionConfig(max_steps=max_steps, learning_rate=learning_rate, window=window, cost_threshold=cost_threshold)
        config.validate()
        real_train = load_image_set(train)
        run_device = resolve_device(device)
        seed_everything(seed)
        rows = [class_examples(real_train)]
        report: dict[str, dict] = {}
        for target in TARGETS:
            model = load_student(f"{models_dir}/mlp_{target}.pt", run_device)
            reconstructions, details = invert_all_classes(model, real_train.num_classes, real_train.image_shape, config, run_device)
            distances = reconstruction_distances(reconstructions, real_train)
            per_class = {name: {**detail, **distance} for name, detail, distance in zip(real_train.class_names, details, distances)}
            report[f"mlp_{target}"] = {
                "mean_nearest_rmse": float(np.mean([row["nearest_rmse"] for row in distances])),
                "mean_class_mean_rmse": float(np.mean([row["class_mean_rmse"] for row in distances])),
                "mean_final_cost": float(np.mean([row["cost"] for row in details])),
                "per_class": per_class,
            }
            log.info("MLP trained on %s data: mean RMSE to nearest real image %.4f, to class mean %.4f", target, report[f"mlp_{target}"]["mean_nearest_rmse"], report[f"mlp_{target}"]["mean_class_mean_rmse"])
            rows.append(tensor_to_images(reconstructions))
        save_grid(grid, np.concatenate(rows), columns=real_train.num_classes)
        write_json(metrics, report)


if __name__ == "__main__":
    app()
