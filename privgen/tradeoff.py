"""Collect the privacy-accuracy trade-off across DVC experiments: one row per teacher sigma.

Run it in the repository after a sweep over `gan.sigma`:

    dvc exp run --queue -S gan.sigma=0
    dvc exp run --queue -S gan.sigma=1.5
    dvc queue start -j 1
    python -m privgen.tradeoff

It reads `dvc exp show --json` and writes plots/tradeoff.csv (mu, student accuracies and attack
results per sigma) and plots/tradeoff.png: accuracy against mu, each point labelled with its
sigma, and below it the model inversion reconstructions of the MLP trained on each experiment's
artificial data, as in figure 3 of Triastcyn and Faltings. Those come from the copy of
plots/inversion.png that each experiment's git commit keeps.

In that JSON (DVC 3.67) the top level lists the workspace and the baseline commits. Each
commit's `experiments` lists entries with an `executor` (null for an experiment run in the
workspace, else its `state`: queued, running, success or failed) and `revs`, whose `data`
contains `params` and `metrics` keyed by file. A queued or failed experiment still carries `data`,
copied from its baseline, so only finished experiments without an `error` count.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from privgen.attacks import INVERSION_ROWS, INVERSION_TARGETS
from privgen.errors import PrivgenError
from privgen.files import write_csv
from privgen.images import read_labelled_row
from privgen.plots import save_tradeoff
from privgen.runtime import stage_errors, start_stage

log = logging.getLogger("privgen.tradeoff")

PRIVACY, STUDENTS, ATTACK = "metrics/privacy.json", "metrics/students.json", "metrics/attack.json"
# CSV column -> (metrics file, dotted key inside it).
METRIC_COLUMNS = {
    "mu": (PRIVACY, "mu"),
    "gamma": (PRIVACY, "gamma"),
    "privacy_extractor": (PRIVACY, "extractor"),
    "cnn_accuracy": (STUDENTS, "cnn.artificial.test_accuracy"),
    "logistic_accuracy": (STUDENTS, "logistic.artificial.test_accuracy"),
    "mlp_accuracy": (STUDENTS, "mlp.artificial.test_accuracy"),
    "cnn_real_accuracy": (STUDENTS, "cnn.real.test_accuracy"),
    "logistic_real_accuracy": (STUDENTS, "logistic.real.test_accuracy"),
    "mlp_real_accuracy": (STUDENTS, "mlp.real.test_accuracy"),
    "inversion_nearest_rmse": (ATTACK, "mlp_artificial.mean_nearest_rmse"),
    "inversion_nearest_feature_distance": (ATTACK, "mlp_artificial.mean_nearest_feature_distance"),
    "inversion_recognition_rate": (ATTACK, "mlp_artificial.recognition_rate"),
    "release_membership_auc": (ATTACK, "membership.release.auc"),
    "cnn_artificial_loss_attack_auc": (ATTACK, "membership.students.cnn_artificial.auc"),
}
COLUMNS = ["sigma", *METRIC_COLUMNS, "experiment", "commit", "revision", "timestamp"]
INVERSION_GRID = "plots/inversion.png"
# The inverted model whose reconstructions the figure shows under the curve.
STRIP_TARGET = "mlp_artificial"
STUDENT_NAMES = ("cnn", "logistic", "mlp")


def lookup(tree: dict | None, dotted_key: str):
    """Return the value at `dotted_key` ("a.b.c") in nested dicts, or None where any level is missing."""
    for key in dotted_key.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def experiment_row(revision: dict, commit: str) -> dict:
    """Turn one experiment revision of `dvc exp show --json` into a trade-off row."""
    data = revision["data"]
    # File names contain dots, so they are looked up directly, and only the keys inside a file by dotted path.
    params = (data.get("params") or {}).get("params.yaml")
    metrics = data.get("metrics") or {}
    row = {"sigma": lookup(params, "data.gan.sigma")}
    for column, (metrics_file, key) in METRIC_COLUMNS.items():
        row[column] = lookup(metrics.get(metrics_file), f"data.{key}")
    row.update({"experiment": revision.get("name") or revision["rev"][:7], "commit": commit[:7], "revision": revision["rev"], "timestamp": data.get("timestamp")})
    return row


def finished_experiments(exp_show: list[dict], commit: str | None) -> list[dict]:
    """Return a row per finished experiment of `commit` (of every commit when None) in `dvc exp show --json` output."""
    rows = []
    for baseline in exp_show:
        if baseline.get("rev") == "workspace" or (commit is not None and baseline.get("rev") != commit):
            continue
        for experiment in baseline.get("experiments") or []:
            executor = experiment.get("executor")
            state = executor.get("state") if executor else "success"
            for revision in experiment.get("revs") or []:
                if state != "success" or revision.get("error") or not revision.get("data"):
                    reason = (revision.get("error") or {}).get("msg") or state
                    log.info("skipping experiment %s: %s", revision.get("name") or revision.get("rev", "?")[:7], reason)
                    continue
                rows.append(experiment_row(revision, baseline["rev"]))
    return rows


def tradeoff_table(rows: list[dict]) -> pd.DataFrame:
    """Build the table of one row per sigma, sorted by sigma, keeping the newest of experiments that share a sigma."""
    complete = []
    for row in rows:
        if row["sigma"] is None:
            log.warning("skipping experiment %s: params.yaml has no gan.sigma", row["experiment"])
            continue
        complete.append(row)
    frame = pd.DataFrame(complete, columns=COLUMNS)
    frame = frame.sort_values(["sigma", "timestamp"], kind="stable")
    duplicated = frame.duplicated("sigma", keep="last")
    for _, row in frame[duplicated].iterrows():
        log.warning("experiment %s repeats sigma = %g; the newer one is kept", row["experiment"], row["sigma"])
    return frame[~duplicated].reset_index(drop=True)


def run_exp_show(repo: Path, all_commits: bool) -> list[dict]:
    command = [sys.executable, "-m", "dvc", "exp", "show", "--json", *(["--all-commits"] if all_commits else [])]
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise PrivgenError(f"`dvc exp show --json` failed in {str(repo)!r} ({last_line}); run this command in the DVC repository")
    return json.loads(result.stdout)


def head_commit(repo: Path) -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        raise PrivgenError(f"{str(repo)!r} has no git commit; commit the pipeline, then run the experiments")
    return result.stdout.strip()


def reconstruction_strip(repo: Path, revision: str) -> np.ndarray | None:
    """Return the reconstructions of the artificial-data MLP in an experiment's commit, or None where they cannot be read."""
    result = subprocess.run(["git", "show", f"{revision}:{INVERSION_GRID}"], cwd=repo, capture_output=True)
    if result.returncode != 0:
        log.warning("experiment commit %s has no readable %s, so its reconstructions are left out of the figure", revision[:7], INVERSION_GRID)
        return None
    try:
        return read_labelled_row(result.stdout, 1 + list(INVERSION_TARGETS).index(STRIP_TARGET), len(INVERSION_ROWS))
    except PrivgenError as error:
        log.warning("reconstructions of experiment commit %s are left out of the figure: %s", revision[:7], error)
        return None


def plot_tradeoff(path: str | Path, table: pd.DataFrame, student: str, repo: Path) -> None:
    plotted = table.dropna(subset=["mu", f"{student}_accuracy"])
    plotted = plotted[plotted["mu"].map(math.isfinite)]
    if len(plotted) < len(table):
        log.warning("%d experiment(s) lack a finite mu or a %s accuracy and are left out of the figure", len(table) - len(plotted), student)
    baselines = plotted[f"{student}_real_accuracy"].dropna()
    gammas = plotted["gamma"].dropna().unique()
    strips = []
    for row in plotted.sort_values("mu").itertuples():
        strip = reconstruction_strip(repo, row.revision)
        if strip is not None:
            strips.append((f"sigma = {row.sigma:g}, mu = {row.mu:.3g}", strip))
    save_tradeoff(
        path,
        plotted["mu"].to_numpy(dtype=float),
        plotted[f"{student}_accuracy"].to_numpy(dtype=float),
        [f"sigma = {sigma:g}" for sigma in plotted["sigma"]],
        float(baselines.mean()) if len(baselines) else None,
        student,
        float(gammas[0]) if len(gammas) == 1 else None,
        strips,
    )


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    repo: Annotated[Path, typer.Option("--repo", help="DVC repository whose experiments to collect.")] = Path("."),
    student: Annotated[str, typer.Option("--student", help=f"Student whose accuracy the figure shows: {', '.join(STUDENT_NAMES)}.")] = "mlp",
    all_commits: Annotated[bool, typer.Option("--all_commits", help="Collect experiments of every commit, not only of HEAD.")] = False,
    csv: Annotated[str, typer.Option("--csv", help="Output CSV, relative to the repository.")] = "plots/tradeoff.csv",
    png: Annotated[str, typer.Option("--png", help="Output PNG, relative to the repository.")] = "plots/tradeoff.png",
) -> None:
    """Write the privacy-accuracy trade-off of the finished experiments to a CSV table and a PNG figure."""
    start_stage()
    with stage_errors():
        if student not in STUDENT_NAMES:
            raise PrivgenError(f"unknown student {student!r}; choose one of {', '.join(STUDENT_NAMES)}")
        commit = None if all_commits else head_commit(repo)
        table = tradeoff_table(finished_experiments(run_exp_show(repo, all_commits), commit))
        if table.empty:
            scope = "any commit" if all_commits else f"commit {commit[:7]}"
            raise PrivgenError(
                f"no finished experiment of {scope} was found; queue a sweep with `dvc exp run --queue -S gan.sigma=...`, "
                "run it with `dvc queue start`, and wait until `dvc queue status` shows it done"
            )
        write_csv(repo / csv, table)
        plot_tradeoff(repo / png, table, student, repo)
        log.info("trade-off of %d experiment(s), sigma = %s: %s and %s", len(table), ", ".join(f"{value:g}" for value in table["sigma"]), csv, png)


if __name__ == "__main__":
    app()
