"""Stage train_students: train each student on the artificial data and, as a baseline, on the real train split.

Reads data/prepared/{train,test}.npz and data/artificial/train.npz. Every model is selected on a
validation split of its own training data and evaluated once on the real test split. Writes
metrics/students.json, plots/student_validation.csv (per-epoch validation losses of the
artificial-data students on artificial and on real data) and models/students/{name}_{source}.pt.
"""

from __future__ import annotations

import logging
from typing import Annotated

import pandas as pd
import typer

from privgen.checkpoints import save_student
from privgen.data import load_image_set
from privgen.files import write_csv, write_json
from privgen.runtime import resolve_device, seed_everything, start_stage, stage_errors
from privgen.students import STUDENTS, TrainingConfig, build_student, evaluate, loss_correlation, selection_split, train_student

log = logging.getLogger("privgen.train_students")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
defaults = TrainingConfig()


@app.command()
def main(
    epochs: Annotated[int, typer.Option("--epochs", help="Largest number of training epochs.")] = defaults.epochs,
    batch_size: Annotated[int, typer.Option("--batch_size", help="Images per step.")] = defaults.batch_size,
    learning_rate: Annotated[float, typer.Option("--learning_rate", help="Adam learning rate.")] = defaults.learning_rate,
    patience: Annotated[int, typer.Option("--patience", help="Epochs without a lower validation loss before stopping.")] = defaults.patience,
    validation_fraction: Annotated[float, typer.Option("--validation_fraction", help="Share of the training data held out for model selection.")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of splits, initialisation and batch order.")] = 42,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")] = "auto",
    train: Annotated[str, typer.Option("--train", help="Prepared real train split.")] = "data/prepared/train.npz",
    test: Annotated[str, typer.Option("--test", help="Prepared real test split.")] = "data/prepared/test.npz",
    artificial: Annotated[str, typer.Option("--artificial", help="Artificial dataset.")] = "data/artificial/train.npz",
    models_dir: Annotated[str, typer.Option("--models_dir", help="Folder for the student weights.")] = "models/students",
    metrics: Annotated[str, typer.Option("--metrics", help="JSON file with the test accuracies.")] = "metrics/students.json",
    curves: Annotated[str, typer.Option("--curves", help="CSV of per-epoch validation losses (a DVC plot).")] = "plots/student_validation.csv",
) -> None:
    start_stage()
    with stage_errors():
        config = TrainingConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, patience=patience, seed=seed)
        config.validate()
        real_train, real_test, artificial_set = load_image_set(train), load_image_set(test), load_image_set(artificial)
        run_device = resolve_device(device)
        sources = {
            "artificial": selection_split(artificial_set, validation_fraction, seed),
            "real": selection_split(real_train, validation_fraction, seed),
        }
        results: dict[str, dict] = {}
        curve_rows = []
        for name in STUDENTS:
            results[name] = {}
            for source, (fit_set, validation_set) in sources.items():
                seed_everything(seed)
                model = build_student(name, real_train.image_shape, real_train.num_classes)
                # The real train split never trained the artificial-data students, so it can stand in
                # for real validation data when comparing validation curves.
                monitor = real_train if source == "artificial" else None
                result = train_student(model, fit_set, validation_set, config, run_device, monitor_set=monitor)
                scores = evaluate(result.model, real_test, run_device)
                results[name][source] = {"test_accuracy": scores["accuracy"], "test_loss": scores["loss"], "best_epoch": result.best_epoch}
                log.info("%s on %s data: test accuracy %.4f (epoch %d kept)", name, source, scores["accuracy"], result.best_epoch)
                if monitor is not None:
                    results[name]["validation_loss_correlation"] = loss_correlation(result.validation_losses, result.monitor_losses)
                    curve_rows += [
                        {"student": name, "epoch": epoch, "artificial_validation_loss": round(own, 6), "real_validation_loss": round(real, 6)}
                        for epoch, (own, real) in enumerate(zip(result.validation_losses, result.monitor_losses), start=1)
                    ]
                save_student(f"{models_dir}/{name}_{source}.pt", name, result.model, real_train.image_shape, real_train.num_classes)
        for name in STUDENTS:
            results[name]["accuracy_drop"] = results[name]["real"]["test_accuracy"] - results[name]["artificial"]["test_accuracy"]
        write_json(metrics, results)
        write_csv(curves, pd.DataFrame(curve_rows))


if __name__ == "__main__":
    app()
