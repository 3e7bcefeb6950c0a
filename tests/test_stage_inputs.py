"""Stage scripts run as a user runs them, on good input and then on bad input over earlier outputs."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from dataset_files import write_idx_dataset
from privgen.data import ImageSet, save_image_set

ROOT = Path(__file__).resolve().parent.parent


def run_stage(stage: str, arguments: list[str], cwd: Path) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", f"stages.{stage}", *arguments], cwd=cwd, env=environment, capture_output=True, text=True)


def digests(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.rglob("*")) if path.is_file()}


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def test_prepare_stage_writes_fashion_mnist(tmp_path):
    write_idx_dataset(tmp_path / "fashion", compress=True)
    result = run_stage("prepare", ["--dataset", "fashion_mnist", "--root", "fashion", "--limit", "20"], tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "metrics" / "data.json").read_text())
    assert summary["train"]["total"] == 20
    assert summary["test"]["total"] == 20
    assert summary["image_shape"] == [1, 28, 28]
    assert set(summary["train"]["per_class"].values()) == {2}
    with np.load(tmp_path / "data" / "prepared" / "train.npz") as archive:
        assert archive["images"].dtype == np.uint8
        assert list(archive["class_names"])[:2] == ["T-shirt/top", "Trouser"]


def test_prepare_stage_bad_input_keeps_outputs(tmp_path):
    folder = tmp_path / "fashion"
    write_idx_dataset(folder, compress=True)
    assert run_stage("prepare", ["--dataset", "fashion_mnist", "--root", "fashion"], tmp_path).returncode == 0
    before = digests(tmp_path / "data") | digests(tmp_path / "metrics")
    images = folder / "train-images-idx3-ubyte.gz"
    intact_images = images.read_bytes()

    # Each case damages the input or the options, runs the stage and checks the failure.
    fashion = ["--dataset", "fashion_mnist", "--root", "fashion"]
    cases = [
        ("limit", fashion + ["--limit", "-1"], "data.limit is -1; use 0 for every image"),
        ("test_fraction", ["--dataset", "mnist5k", "--test_fraction", "1.5"], "data.test_fraction is 1.5; mnist5k needs a share in (0, 1)"),
        ("truncated", fashion, "train-images-idx3-ubyte.gz' is truncated: its gzip stream ends early"),
        ("missing", fashion, "t10k-labels-idx1-ubyte' (or t10k-labels-idx1-ubyte.gz) is missing; set data.root"),
    ]
    for case, options, message in cases:
        if case == "truncated":
            images.write_bytes(intact_images[:-50])
        elif case == "missing":
            images.write_bytes(intact_images)
            (folder / "t10k-labels-idx1-ubyte.gz").unlink()
        result = run_stage("prepare", options, tmp_path)

        assert result.returncode == 1, case
        assert len(error_lines(result)) == 1, case
        assert message in error_lines(result)[0]
        assert "Traceback" not in result.stderr
        assert digests(tmp_path / "data") | digests(tmp_path / "metrics") == before, case


def tiny_image_set(count: int, seed: int) -> ImageSet:
    rng = np.random.default_rng(seed)
    labels = np.arange(count, dtype=np.int64) % 2
    # Class 1 is brighter, so the students have something to learn.
    images = (rng.integers(0, 100, size=(count, 1, 8, 8)) + 120 * labels[:, None, None, None]).astype(np.uint8)
    return ImageSet(images, labels, ["dark", "bright"])


def test_train_students_bad_npz_keeps_outputs(tmp_path):
    prepared = tmp_path / "data" / "prepared"
    artificial = tmp_path / "data" / "artificial" / "train.npz"
    save_image_set(prepared / "train.npz", tiny_image_set(60, seed=0))
    save_image_set(prepared / "test.npz", tiny_image_set(20, seed=1))
    save_image_set(artificial, tiny_image_set(60, seed=2))
    options = ["--epochs", "1", "--batch_size", "16", "--device", "cpu"]
    assert run_stage("train_students", options, tmp_path).returncode == 0
    outputs = digests(tmp_path / "metrics") | digests(tmp_path / "plots") | digests(tmp_path / "models")
    assert "students.json" in outputs
    assert "students/cnn_artificial.pt" in outputs

    good = tiny_image_set(60, seed=2)
    bad_archives = {
        "lacks the array(s) ['labels']": dict(images=good.images, class_names=np.array(good.class_names)),
        "has images of dtype float32": dict(images=good.images.astype(np.float32), labels=good.labels, class_names=np.array(good.class_names)),
    }
    for message, arrays in bad_archives.items():
        np.savez(artificial, **arrays)
        result = run_stage("train_students", options, tmp_path)

        assert result.returncode == 1, message
        assert len(error_lines(result)) == 1, message
        assert "'data/artificial/train.npz'" in error_lines(result)[0]
        assert message in error_lines(result)[0]
        assert "Traceback" not in result.stderr
        assert digests(tmp_path / "metrics") | digests(tmp_path / "plots") | digests(tmp_path / "models") == outputs, message
