"""Helpers to run the DVC pipeline in a throw-away copy of the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COPIED = ["dvc.yaml", "params.yaml", "privgen", "stages", ".dvc/config", ".dvc/.gitignore"]

# Settings small enough for the whole pipeline to run in about a minute on two CPU cores.
TINY_PARAMS = {
    "gan": {"iterations": 6, "width": 4, "batch_size": 16, "log_interval": 2, "checkpoint_interval": 3},
    "generate": {"size": 300},
    "features": {"epochs": 1},
    "privacy": {"pairs": 30, "max_neighbours": 5},
    "students": {"epochs": 2, "patience": 1},
    "attack": {"max_steps": 5, "window": 2, "dp_epochs": 1, "evaluator_epochs": 1, "bootstrap_resamples": 20},
    "device": "cpu",
}


def tool_environment() -> dict[str, str]:
    """Return an environment whose PATH finds this interpreter's `python` and `dvc` first."""
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    environment["DVC_NO_ANALYTICS"] = "1"
    return environment


def run(command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=tool_environment(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def merge(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def make_pipeline_copy(destination: Path, overrides: dict | None = None) -> Path:
    """Copy the pipeline's sources into `destination`, apply param overrides and commit it as a git repository."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = ROOT / name
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = merge(params, overrides if overrides is not None else TINY_PARAMS)
    (destination / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], destination)
    run(["git", "add", "-A"], destination)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "pipeline copy"], destination)
    return destination
