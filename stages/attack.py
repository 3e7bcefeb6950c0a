"""Stage attack: model inversion and membership inference against the release and the students.

Reads data/prepared/{train,test}.npz, data/artificial/train.npz, models/students/*.pt,
data/features/real.npy and models/feature_extractor.pt. Trains two models of its own: an MLP
on the real train split with DP-SGD (the differentially private baseline, saved to
models/mlp_dpsgd.pt) and an evaluation CNN on the real test split. Writes metrics/attack.json
and plots/inversion.png (rows: a real example of each class, then the reconstructions from the
MLPs trained on real data, on artificial data and with DP-SGD).
"""

from __future__ import annotations

import logging
from typing import Annotated

import numpy as np
import typer

from privgen.attacks import INVERSION_ROWS, INVERSION_TARGETS, InversionConfig, class_examples, invert_and_measure, train_evaluator
from privgen.checkpoints import load_student, save_student
from privgen.data import load_image_set
from privgen.dpsgd import ACCOUNTANTS, DPSGDConfig, train_dp_student
from privgen.errors import PrivgenError
from privgen.features import load_feature_space
from privgen.files import require_file, write_json
from privgen.images import save_labelled_rows
from privgen.membership import loss_threshold_attack, release_membership
from privgen.runtime import resolve_device, seed_everything, stage_errors, start_stage
from privgen.students import evaluate, selection_split

log = logging.getLogger("privgen.attack")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
inversion_defaults = InversionConfig()
dp_defaults = DPSGDConfig()
# The students trained on real data held out a share of the real train split for model selection
# (students.validation_fraction), so only the images they fitted are their members. The other
# targets take the whole real train split as members.
LOSS_ATTACK_TARGETS = ("cnn_real", "cnn_artificial", "mlp_real", "mlp_artificial", "mlp_dpsgd")


@app.command()
def main(
    max_steps: Annotated[int, typer.Option("--max_steps", help="Maximum gradient steps of model inversion per class.")] = inversion_defaults.max_steps,
    learning_rate: Annotated[float, typer.Option("--learning_rate", help="Model inversion step size on the input (pixels in [-1, 1]).")] = inversion_defaults.learning_rate,
    window: Annotated[int, typer.Option("--window", help="Stop inverting when the cost has not improved over this many steps.")] = inversion_defaults.window,
    cost_threshold: Annotated[float, typer.Option("--cost_threshold", help="Stop inverting when 1 - p(target) falls below this.")] = inversion_defaults.cost_threshold,
    dp_noise_multiplier: Annotated[float, typer.Option("--dp_noise_multiplier", help="DP-SGD noise standard deviation, in units of dp_max_grad_norm.")] = dp_defaults.noise_multiplier,
    dp_max_grad_norm: Annotated[float, typer.Option("--dp_max_grad_norm", help="DP-SGD clipping bound on each example's gradient (L2 norm).")] = dp_defaults.max_grad_norm,
    dp_epochs: Annotated[int, typer.Option("--dp_epochs", help="DP-SGD training epochs; the last epoch's weights are kept.")] = dp_defaults.epochs,
    dp_batch_size: Annotated[int, typer.Option("--dp_batch_size", help="DP-SGD expected batch size (Poisson sampling).")] = dp_defaults.batch_size,
    dp_learning_rate: Annotated[float, typer.Option("--dp_learning_rate", help="Adam learning rate of DP-SGD.")] = dp_defaults.learning_rate,
    dp_delta: Annotated[float, typer.Option("--dp_delta", help="Delta at which the accountant reports epsilon.")] = dp_defaults.delta,
    dp_accountant: Annotated[str, typer.Option("--dp_accountant", help=f"Opacus privacy accountant: {', '.join(ACCOUNTANTS)}.")] = dp_defaults.accountant,
    evaluator_epochs: Annotated[int, typer.Option("--evaluator_epochs", help="Maximum training epochs of the evaluation CNN.")] = 10,
    bootstrap_resamples: Annotated[int, typer.Option("--bootstrap_resamples", help="Bootstrap resamples behind each ROC AUC interval.")] = 1000,
    inception_weights: Annotated[str, typer.Option("--inception_weights", help="Local Inception V3 weights file, needed when the features are `inception`.")] = "",
    validation_fraction: Annotated[float, typer.Option("--validation_fraction", help="Share of the real train split that the real-data students held out for model selection (students.validation_fraction).")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of DP-SGD, the evaluator and the bootstrap; with validation_fraction it rebuilds the students' split.")] = 42,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")] = "auto",
    train: Annotated[str, typer.Option("--train", help="Prepared real train split (the members).")] = "data/prepared/train.npz",
    test: Annotated[str, typer.Option("--test", help="Prepared real test split (the non-members).")] = "data/prepared/test.npz",
    artificial: Annotated[str, typer.Option("--artificial", help="Artificial dataset (the release).")] = "data/artificial/train.npz",
    models_dir: Annotated[str, typer.Option("--models_dir", help="Folder with the students' weights.")] = "models/students",
    real_features: Annotated[str, typer.Option("--real_features", help="Features of the real train split from extract_features.")] = "data/features/real.npy",
    feature_extractor: Annotated[str, typer.Option("--feature_extractor", help="Extractor saved by extract_features.")] = "models/feature_extractor.pt",
    dp_model: Annotated[str, typer.Option("--dp_model", help="Output file for the DP-SGD MLP's weights.")] = "models/mlp_dpsgd.pt",
    metrics: Annotated[str, typer.Option("--metrics", help="Output JSON file with the attack results.")] = "metrics/attack.json",
    grid: Annotated[str, typer.Option("--grid", help="Output PNG grid: real examples, then one row of reconstructions per model.")] = "plots/inversion.png",
) -> None:
    start_stage()
    with stage_errors():
        inversion = InversionConfig(max_steps=max_steps, learning_rate=learning_rate, window=window, cost_threshold=cost_threshold)
        inversion.validate()
        dp_config = DPSGDConfig(dp_noise_multiplier, dp_max_grad_norm, dp_epochs, dp_batch_size, dp_learning_rate, dp_delta, dp_accountant)
        dp_config.validate()
        if evaluator_epochs < 1:
            raise PrivgenError(f"attack.evaluator_epochs is {evaluator_epochs}; it must be a positive integer, for example 10")
        if bootstrap_resamples < 1:
            raise PrivgenError(f"attack.bootstrap_resamples is {bootstrap_resamples}; it must be a positive integer, for example 1000")
        real_train, real_test, release = load_image_set(train), load_image_set(test), load_image_set(artificial)
        run_device = resolve_device(device)
        space = load_feature_space(feature_extractor, run_device, inception_weights)
        train_features = np.load(require_file(real_features, "python -m stages.extract_features"), allow_pickle=False)
        models = {name: load_student(f"{models_dir}/{name}.pt", run_device) for name in sorted(set(LOSS_ATTACK_TARGETS) - {"mlp_dpsgd"})}

        # The differentially private baseline: the MLP trained on the real train split with DP-SGD.
        seed_everything(seed)
        log.info("DP-SGD: noise multiplier %g, clipping %g, %d epochs, batch size %d", dp_noise_multiplier, dp_max_grad_norm, dp_epochs, dp_batch_size)
        dp_result = train_dp_student("mlp", real_train, dp_config, run_device, seed)
        models["mlp_dpsgd"] = dp_result.model
        dp_accuracy = evaluate(dp_result.model, real_test, run_device)["accuracy"]
        log.info("DP-SGD MLP: test accuracy %.4f at epsilon = %.3f, delta = %g (%s accountant)", dp_accuracy, dp_result.epsilon, dp_delta, dp_accountant)

        # The evaluation classifier trains on the real test split only, so the attacked training images are new to it.
        seed_everything(seed)
        evaluator = train_evaluator(real_test, evaluator_epochs, seed, run_device)
        evaluator_accuracy = evaluate(evaluator, real_train, run_device)["accuracy"]
        log.info("evaluation CNN: accuracy %.4f on the real train split, which it never trained on", evaluator_accuracy)

        # Model inversion of each MLP.
        report: dict[str, dict] = {}
        rows = [class_examples(real_train)]
        for name in INVERSION_TARGETS:
            seed_everything(seed)
            reconstructions, report[name] = invert_and_measure(models[name], real_train, space, train_features, evaluator, inversion, run_device)
            rows.append(reconstructions)
            log.info(
                "inversion of %s: RMSE to nearest real image %.4f, feature distance %.4g, recognised %.0f%%",
                name, report[name]["mean_nearest_rmse"], report[name]["mean_nearest_feature_distance"], 100 * report[name]["recognition_rate"],
            )  # fmt: skip

        # Membership inference on the release and on the students.
        release_result = release_membership(real_train, real_test, release, bootstrap_resamples, seed, run_device)
        log.info("membership on the release: ROC AUC %.4f [%.4f, %.4f]", release_result.auc, release_result.auc_low, release_result.auc_high)
        real_fitted, _ = selection_split(real_train, validation_fraction, seed)
        student_attacks = {}
        for name in LOSS_ATTACK_TARGETS:
            members = real_fitted if name.endswith("_real") else real_train
            result, advantage = loss_threshold_attack(models[name], members, real_test, bootstrap_resamples, seed, run_device)
            student_attacks[name] = {**result.summary(), "advantage": advantage}
            log.info("loss-threshold attack on %s: ROC AUC %.4f [%.4f, %.4f]", name, result.auc, result.auc_low, result.auc_high)

        report["dpsgd"] = {
            "epsilon": dp_result.epsilon,
            "delta": dp_delta,
            "accountant": dp_accountant,
            "noise_multiplier": dp_noise_multiplier,
            "max_grad_norm": dp_max_grad_norm,
            "epochs": dp_epochs,
            "expected_batch_size": dp_batch_size,
            "sample_rate": dp_result.sample_rate,
            "steps": dp_result.steps,
            "test_accuracy": dp_accuracy,
        }
        report["evaluator"] = {"trained_on": "real test split", "real_train_accuracy": evaluator_accuracy}
        report["feature_space"] = {"extractor": space.extractor, "dimension": int(train_features.shape[1])}
        report["membership"] = {
            "release": {**release_result.summary(), "space": "pixels"},
            "students": student_attacks,
        }
        save_student(dp_model, "mlp", dp_result.model, real_train.image_shape, real_train.num_classes)
        save_labelled_rows(grid, rows, INVERSION_ROWS)
        write_json(metrics, report)


if __name__ == "__main__":
    app()
