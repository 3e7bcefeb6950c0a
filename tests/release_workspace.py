"""A tiny workspace with every input of the release stage, made from real components.

The real splits are a small subset of the embedded MNIST digits, the teacher is trained for two
iterations, and the artificial set is sampled from it. Metrics files and figures of the later
stages are the repository's committed outputs, which describe the same 10 classes of 1 x 28 x 28
images.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from privgen.data import ImageSet, save_image_set, stratified_split
from privgen.datasets import load_mnist5k
from privgen.files import write_csv, write_json
from privgen.sampling import sample
from privgen.teacher import TeacherConfig, TeacherTrainer

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
ARTIFICIAL_SIZE = 40
TEACHER_CONFIG = TeacherConfig(iterations=2, width=4, batch_size=8, critic_iterations=1, log_interval=1, checkpoint_interval=2, seed=3)
COPIED_METRICS = ("teacher", "privacy", "students", "attack")
COPIED_PLOTS = ("artificial_samples.png", "nearest_real.png", "privacy_losses.png", "inversion.png")


def real_splits() -> tuple[ImageSet, ImageSet]:
    """Return 100 train and 30 test images of real MNIST digits, 10 classes."""
    pool = load_mnist5k()
    pool = pool.subset(np.concatenate([np.flatnonzero(pool.labels == label)[:13] for label in range(10)]))
    return stratified_split(pool, 30 / 130, seed=0)


def make_release_workspace(folder: Path) -> Path:
    """Write the release stage's inputs under `folder` at their default relative paths."""
    train, test = real_splits()
    save_image_set(folder / "data/prepared/train.npz", train)
    save_image_set(folder / "data/prepared/test.npz", test)

    trainer = TeacherTrainer(TEACHER_CONFIG, train, CPU)
    trainer.train(progress=False)
    trainer.save(folder / "models/teacher.pt")
    write_csv(folder / "plots/teacher_losses.csv", trainer.history_frame())

    labels = np.sort(np.arange(ARTIFICIAL_SIZE, dtype=np.int64) % train.num_classes)
    artificial = ImageSet(sample(trainer.generator.eval(), labels, seed=0, device=CPU), labels, train.class_names)
    save_image_set(folder / "data/artificial/train.npz", artificial)

    write_json(folder / "metrics/data.json", {
        "dataset": "mnist5k",
        "image_shape": list(train.image_shape),
        "num_classes": train.num_classes,
        "train": {"total": len(train), "per_class": train.counts_per_class()},
        "test": {"total": len(test), "per_class": test.counts_per_class()},
    })  # fmt: skip
    for name in COPIED_METRICS:
        shutil.copyfile(ROOT / "metrics" / f"{name}.json", folder / "metrics" / f"{name}.json")
    for name in COPIED_PLOTS:
        shutil.copyfile(ROOT / "plots" / name, folder / "plots" / name)
    return folder


def run_stage(workspace: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run the release stage on the inputs in `workspace`, writing release/ and report/ there unless `extra` overrides it."""
    paths = {
        "--artificial": "data/artificial/train.npz", "--teacher": "models/teacher.pt",
        "--train": "data/prepared/train.npz", "--test": "data/prepared/test.npz",
        "--metrics_dir": "metrics", "--plots_dir": "plots", "--release": "release", "--report": "report",
    }  # fmt: skip
    options = [part for option, path in paths.items() for part in (option, str(workspace / path))]
    command = [sys.executable, "-m", "stages.release", *options, *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
