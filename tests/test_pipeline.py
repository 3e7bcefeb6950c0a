"""End-to-end runs of the DVC pipeline with tiny settings in a temporary copy of the repository."""

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from pipeline_copy import TINY_PARAMS, make_pipeline_copy, merge, run

METRIC_FILES = ["data", "teacher", "privacy", "students", "attack"]


def declared_outputs(repo: Path) -> list[Path]:
    """Every path that dvc.yaml declares under outs, metrics or plots of a stage."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    paths = []
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                paths.append(repo / (next(iter(entry)) if isinstance(entry, dict) else entry))
    return paths


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_metrics(repo: Path) -> dict:
    return {name: json.loads((repo / "metrics" / f"{name}.json").read_text()) for name in METRIC_FILES}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> Path:
    repo = make_pipeline_copy(tmp_path_factory.mktemp("pipeline"))
    run(["dvc", "repro"], repo)
    return repo


def test_repro_writes_every_declared_output(reproduced):
    missing = [str(path) for path in declared_outputs(reproduced) if not path.exists()]
    assert missing == []


def test_repro_metrics_present_and_in_range(reproduced):
    metrics = load_metrics(reproduced)
    assert metrics["data"]["train"]["total"] == 4000
    assert metrics["data"]["test"]["total"] == 1000
    assert metrics["teacher"]["iterations"] == TINY_PARAMS["gan"]["iterations"]
    privacy = metrics["privacy"]
    assert privacy["gamma"] == 1e-5
    assert privacy["mu"] >= privacy["mean_loss"]
    assert 1 <= privacy["neighbours"] <= TINY_PARAMS["privacy"]["max_neighbours"]
    assert privacy["pairs"] == TINY_PARAMS["privacy"]["pairs"]
    assert privacy["extractor"] == "classifier"
    assert privacy["dimension"] == 128
    for name in ("cnn", "logistic", "mlp"):
        for source in ("artificial", "real"):
            assert 0.0 <= metrics["students"][name][source]["test_accuracy"] <= 1.0
    # Even two epochs on the real split beat chance (0.1) by far.
    assert metrics["students"]["cnn"]["real"]["test_accuracy"] > 0.8
    attack = metrics["attack"]
    for target in ("mlp_real", "mlp_artificial", "mlp_dpsgd"):
        assert len(attack[target]["per_class"]) == 10
        assert 0.0 <= attack[target]["mean_nearest_rmse"] <= 1.0
        assert attack[target]["mean_nearest_feature_distance"] > 0.0
        assert attack[target]["mean_class_mean_feature_distance"] > 0.0
        assert attack[target]["recognition_rate"] in [index / 10 for index in range(11)]
        assert 0.0 <= attack[target]["mean_evaluator_probability"] <= 1.0
    dpsgd = attack["dpsgd"]
    assert 0 < dpsgd["epsilon"] <= 1.0
    assert dpsgd["delta"] == 1e-5
    assert dpsgd["steps"] == TINY_PARAMS["attack"]["dp_epochs"] * 32  # 4,000 images at an expected batch of 128
    assert 0.0 <= dpsgd["test_accuracy"] <= 1.0
    assert attack["feature_space"] == {"extractor": "classifier", "dimension": 128}
    assert attack["evaluator"]["real_train_accuracy"] > 0.5
    release = attack["membership"]["release"]
    assert release["space"] == "pixels"
    assert release["members"] == 4000
    assert release["non_members"] == 1000
    assert 0.0 <= release["auc_low"] <= release["auc_high"] <= 1.0
    assert 0.0 <= release["auc"] <= 1.0
    for name in ("cnn_real", "cnn_artificial", "mlp_real", "mlp_artificial", "mlp_dpsgd"):
        student = attack["membership"]["students"][name]
        assert 0.0 <= student["auc_low"] <= student["auc_high"] <= 1.0
        assert 0.0 <= student["auc"] <= 1.0
        assert -1.0 <= student["advantage"] <= 1.0
        assert student["non_members"] == 1000
    # The real-data students fitted 360 of the 400 train images per class; the rest chose their epoch.
    for name in ("cnn_real", "mlp_real"):
        assert attack["membership"]["students"][name]["members"] == 3600
    for name in ("cnn_artificial", "mlp_artificial", "mlp_dpsgd"):
        assert attack["membership"]["students"][name]["members"] == 4000


def test_artificial_set_is_class_balanced(reproduced):
    import numpy as np

    with np.load(reproduced / "data/artificial/train.npz") as archive:
        counts = np.bincount(archive["labels"])
    assert list(counts) == [TINY_PARAMS["generate"]["size"] // 10] * 10


def test_repro_writes_release_and_report(reproduced):
    import numpy as np
    from torchvision.datasets import ImageFolder

    from privgen.data import load_image_set
    from privgen.report import report_problems

    artificial = load_image_set(reproduced / "data/artificial/train.npz")
    released = load_image_set(reproduced / "release/artificial.npz")
    assert np.array_equal(released.images, artificial.images)
    assert np.array_equal(released.labels, artificial.labels)
    folder = ImageFolder(reproduced / "release/images")
    assert len(folder) == TINY_PARAMS["generate"]["size"]
    assert [folder.class_to_idx[name] for name in sorted(folder.class_to_idx)] == list(range(10))
    assert [target for _, target in folder.samples] == artificial.labels.tolist()

    real_pixels = {image.tobytes() for split in ("train", "test") for image in load_image_set(reproduced / f"data/prepared/{split}.npz").images}
    for path, _ in folder.samples:
        assert np.asarray(folder.loader(path))[..., 0][None].tobytes() not in real_pixels, path

    datasheet = json.loads((reproduced / "release/datasheet.json").read_text())
    metrics = load_metrics(reproduced)
    assert datasheet["privacy"]["mu"] == metrics["privacy"]["mu"]
    assert datasheet["teacher"]["iterations_trained"] == TINY_PARAMS["gan"]["iterations"]
    assert datasheet["checks"] == {"real_images_compared": 5000, "exact_copies_of_real_images": 0}
    assert report_problems(reproduced / "report") == []
    assert "Data and pipelines are up to date" in run(["dvc", "status"], reproduced).stdout


def test_repro_twice_gives_identical_metrics(reproduced, tmp_path):
    again = make_pipeline_copy(tmp_path / "again")
    run(["dvc", "repro"], again)
    assert load_metrics(again) == load_metrics(reproduced)
    # The teacher and every file of the release repeat byte for byte.
    assert file_digest(again / "models/teacher.pt") == file_digest(reproduced / "models/teacher.pt")
    released = sorted(path for path in (reproduced / "release").rglob("*") if path.is_file())
    assert [file_digest(path) for path in released] == [file_digest(again / path.relative_to(reproduced)) for path in released]


def test_experiment_and_metrics_diff(reproduced):
    run(["git", "add", "-A"], reproduced)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "baseline"], reproduced)
    run(["dvc", "exp", "run", "-S", "gan.sigma=0"], reproduced)
    params = yaml.safe_load((reproduced / "params.yaml").read_text())
    assert params["gan"]["sigma"] == 0
    diff = run(["dvc", "metrics", "diff", "--json"], reproduced).stdout
    assert "metrics/teacher.json" in json.loads(diff)


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"data": {"dataset": "mnits"}}, "unknown dataset 'mnits'"),
        ({"gan": {"sigma": -1.0}}, "gan.sigma is -1.0"),
        ({"gan": {"iterations": 0}}, "gan.iterations is 0"),
    ],
)
def test_bad_param_fails_and_keeps_outputs(tmp_path, overrides, message):
    repo = make_pipeline_copy(tmp_path / "repo")
    run(["dvc", "repro", "train_teacher"], repo)
    outputs = [path for path in declared_outputs(repo) if path.is_file()]
    before = {path: file_digest(path) for path in outputs}

    params = merge(yaml.safe_load((repo / "params.yaml").read_text()), overrides)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run(["dvc", "repro", "train_teacher"], repo, check=False)
    assert result.returncode != 0
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1
    assert message in error_lines[0]
    assert {path: file_digest(path) for path in outputs} == before


def test_missing_input_names_file_and_stage(tmp_path):
    repo = make_pipeline_copy(tmp_path / "repo")
    result = run(["python", "-m", "stages.train_teacher", "--iterations", "1"], repo, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: image set 'data/prepared/train.npz' is missing")
