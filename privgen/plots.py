"""Static PNG figures drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)
import numpy as np  # noqa: E402

from privgen.files import atomic_path  # noqa: E402


def save_histogram(path: str | Path, values: np.ndarray, xlabel: str, title: str, bins: int = 30) -> None:
    figure, axes = plt.subplots(figsize=(5, 3.2), dpi=100)
    axes.hist(values, bins=bins, color="#4c72b0")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    axes.set_title(title)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", metadata={"Software": None})
    plt.close(figure)


def save_tradeoff(path: str | Path, mu: np.ndarray, accuracy: np.ndarray, labels: list[str], baseline: float | None, student: str, gamma: float | None) -> None:
    """Draw accuracy against mu, one labelled point per experiment, with the real-data accuracy as a dashed line."""
    figure, axes = plt.subplots(figsize=(5.5, 4), dpi=100)
    order = np.argsort(mu)
    axes.plot(mu[order], accuracy[order], color="#4c72b0", marker="o")
    for x, y, label in zip(mu, accuracy, labels):
        axes.annotate(label, (x, y), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=9)
    if baseline is not None:
        axes.axhline(baseline, color="#55a868", linestyle="--", label=f"{student} trained on real data")
        axes.legend(loc="best", fontsize=9)
    axes.margins(x=0.15, y=0.1)
    gamma_text = f" at gamma = {gamma:g}" if gamma is not None else ""
    axes.set_xlabel(f"privacy loss bound mu{gamma_text}")
    axes.set_ylabel(f"test accuracy of the {student} student")
    axes.set_title("privacy-accuracy trade-off")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", metadata={"Software": None})
    plt.close(figure)
