"""The trade-off collector: parsing `dvc exp show --json`, and a real two-point sweep through the DVC queue."""

import math
import time

import numpy as np
import pandas as pd
from PIL import Image

from pipeline_copy import ROOT, TINY_PARAMS, make_pipeline_copy, merge, run
from privgen.attacks import INVERSION_ROWS
from privgen.images import grid_picture, save_labelled_rows
from privgen.tradeoff import COLUMNS, finished_experiments, reconstruction_strip, tradeoff_table

HEAD = "a" * 40
OLDER = "b" * 40

# Smaller still than TINY_PARAMS: the sweep runs the pipeline once per sigma.
SWEEP_PARAMS = merge(
    TINY_PARAMS,
    {
        "generate": {"size": 100},
        "privacy": {"pairs": 10, "max_neighbours": 3},
        "students": {"epochs": 1, "patience": 1},
        "attack": {"max_steps": 3, "bootstrap_resamples": 10},
    },
)
SWEEP_SIGMAS = (0, 3)


def revision(name: str, sigma: float, mu: float, accuracy: float, timestamp: str, error: dict | None = None) -> dict:
    """One experiment revision in the shape that `dvc exp show --json` of DVC 3.67 prints."""
    return {
        "rev": name * 4,
        "name": name,
        "data": {
            "rev": name * 4,
            "timestamp": timestamp,
            "params": {"params.yaml": {"data": {"gan": {"sigma": sigma, "iterations": 6}}}},
            "metrics": {
                "metrics/privacy.json": {"data": {"mu": mu, "gamma": 1e-5, "extractor": "classifier"}},
                "metrics/students.json": {"data": {"mlp": {"artificial": {"test_accuracy": accuracy}, "real": {"test_accuracy": 0.9}}}},
                "metrics/attack.json": {"data": {"membership": {"release": {"auc": 0.51}}}},
            },
            "deps": {},
            "outs": {},
            "meta": {},
        },
        "error": error,
        "experiments": None,
    }


def experiment(rev: dict, state: str | None) -> dict:
    executor = None if state is None else {"state": state, "name": "dvc-task", "local": {}}
    return {"revs": [rev], "executor": executor, "name": rev["name"]}


def exp_show_output() -> list[dict]:
    return [
        {"rev": "workspace", "name": None, "data": revision("ws", 1.5, 9.0, 0.5, None)["data"], "error": None, "experiments": None},
        {
            "rev": HEAD,
            "name": "main",
            "data": revision("base", 1.5, 9.0, 0.5, "2026-01-01T00:00:00")["data"],
            "error": None,
            "experiments": [
                experiment(revision("done", 0, 30.0, 0.8, "2026-01-01T01:00:00"), "success"),
                experiment(revision("inplace", 2, 5.0, 0.6, "2026-01-01T02:00:00"), None),
                experiment(revision("waiting", 4, 9.0, 0.5, "2026-01-01T03:00:00"), "queued"),
                experiment(revision("broken", 5, 9.0, 0.5, "2026-01-01T04:00:00", {"msg": "Experiment run failed", "type": ""}), "failed"),
                experiment(revision("again", 0, 31.0, 0.7, "2026-01-01T05:00:00"), "success"),
            ],
        },
        {
            "rev": OLDER,
            "name": None,
            "data": revision("old", 1.5, 9.0, 0.5, "2025-12-31T00:00:00")["data"],
            "error": None,
            "experiments": [experiment(revision("older", 1, 12.0, 0.7, "2025-12-31T01:00:00"), "success")],
        },
    ]


def test_finished_experiments_skip_queued_and_failed():
    rows = finished_experiments(exp_show_output(), HEAD)
    assert [row["experiment"] for row in rows] == ["done", "inplace", "again"]
    assert rows[0]["sigma"] == 0
    assert rows[0]["mu"] == 30.0
    assert rows[0]["mlp_accuracy"] == 0.8
    assert rows[0]["mlp_real_accuracy"] == 0.9
    assert rows[0]["release_membership_auc"] == 0.51
    assert rows[0]["cnn_accuracy"] is None  # absent from this experiment's students.json
    assert rows[0]["commit"] == "aaaaaaa"
    assert rows[0]["revision"] == "done" * 4


def test_finished_experiments_of_every_commit():
    rows = finished_experiments(exp_show_output(), None)
    assert [row["experiment"] for row in rows] == ["done", "inplace", "again", "older"]


def test_table_keeps_newest_per_sigma_in_sigma_order():
    table = tradeoff_table(finished_experiments(exp_show_output(), HEAD))
    assert list(table.columns) == COLUMNS
    assert list(table["sigma"]) == [0, 2]
    assert list(table["experiment"]) == ["again", "inplace"]
    assert list(table["mu"]) == [31.0, 5.0]


def commit_inversion_grid(repo, rows: list) -> str:
    """Commit a labelled grid as plots/inversion.png in a new git repository; return the commit."""
    (repo / "plots").mkdir(parents=True)
    save_labelled_rows(repo / "plots/inversion.png", rows, INVERSION_ROWS)
    run(["git", "init", "-q"], repo)
    run(["git", "add", "plots/inversion.png"], repo)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", "grid"], repo)
    return run(["git", "rev-parse", "HEAD"], repo).stdout.strip()


def test_reconstruction_strip_reads_artificial_row(tmp_path):
    rng = np.random.default_rng(0)
    rows = [rng.integers(0, 256, (10, 1, 28, 28), dtype=np.uint8) for _ in INVERSION_ROWS]
    commit = commit_inversion_grid(tmp_path, rows)
    expected = np.asarray(grid_picture(rows[INVERSION_ROWS.index("MLP, artificial data")], columns=10))[..., None]
    np.testing.assert_array_equal(reconstruction_strip(tmp_path, commit), expected)


def test_reconstruction_strip_missing_commit(tmp_path, caplog):
    commit_inversion_grid(tmp_path, [np.zeros((10, 1, 28, 28), dtype=np.uint8)] * len(INVERSION_ROWS))
    assert reconstruction_strip(tmp_path, "c" * 40) is None
    assert "experiment commit ccccccc has no readable plots/inversion.png" in caplog.text


def test_collect_without_experiments_fails_in_one_line(tmp_path):
    repo = make_pipeline_copy(tmp_path / "repo", SWEEP_PARAMS)
    result = run(["python", "-m", "privgen.tradeoff"], repo, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: no finished experiment of commit")


def wait_for_queue(repo, timeout: float = 900) -> str:
    """Poll `dvc queue status` until no experiment is queued or running; return its last output."""
    deadline = time.monotonic() + timeout
    while True:
        status = run(["dvc", "queue", "status"], repo).stdout
        experiment_lines = [line for line in status.splitlines() if line.split()[-1:] in (["Queued"], ["Running"])]
        if not experiment_lines:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"the DVC queue did not finish within {timeout} s:\n{status}")
        time.sleep(5)


def test_sigma_sweep_collects_one_row_per_sigma(tmp_path):
    repo = make_pipeline_copy(tmp_path / "repo", SWEEP_PARAMS)
    for sigma in SWEEP_SIGMAS:
        run(["dvc", "exp", "run", "--queue", "-S", f"gan.sigma={sigma}"], repo)
    run(["dvc", "queue", "start", "-j", "1"], repo)
    status = wait_for_queue(repo)
    assert status.count("Success") == len(SWEEP_SIGMAS), status

    run(["python", "-m", "privgen.tradeoff"], repo)
    table = pd.read_csv(repo / "plots/tradeoff.csv")
    assert list(table.columns) == COLUMNS
    assert list(table["sigma"]) == list(SWEEP_SIGMAS)
    for column in ("mu", "mlp_accuracy", "cnn_accuracy", "inversion_nearest_rmse", "release_membership_auc"):
        assert table[column].map(math.isfinite).all(), column
    assert table["mlp_accuracy"].between(0, 1).all()
    assert table["release_membership_auc"].between(0, 1).all()
    assert (table["gamma"] == 1e-5).all()
    # The curve takes 4 inches and each experiment's reconstructions 0.8 inch more, at 100 dpi.
    with Image.open(repo / "plots/tradeoff.png") as figure:
        assert figure.format == "PNG"
        assert figure.size == (550, 400 + 80 * len(SWEEP_SIGMAS))


def test_collect_rejects_unknown_student(tmp_path):
    result = run(["python", "-m", "privgen.tradeoff", "--repo", str(tmp_path), "--student", "svm"], ROOT, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: unknown student 'svm'; choose one of cnn, logistic, mlp"
