"""Static PNG figures drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from privgen.errors import PrivgenError  # noqa: E402
from privgen.files import atomic_path  # noqa: E402


def save_figure(figure, path: str | Path) -> None:
    """Write a figure as PNG atomically, without the matplotlib version in its metadata, and close it."""
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", metadata={"Software": None})
    plt.close(figure)


def save_histogram(path: str | Path, values: np.ndarray, xlabel: str, title: str, bins: int = 30) -> None:
    figure, axes = plt.subplots(figsize=(5, 3.2), dpi=100)
    axes.hist(values, bins=bins, color="#4c72b0")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    axes.set_title(title)
    save_figure(figure, path)


# Columns of plots/teacher_losses.csv, as written by the train_teacher stage.
LOSS_COLUMNS = ("critic_loss", "wasserstein", "generator_loss", "gradient_penalty")


def save_loss_curves(path: str | Path, losses: pd.DataFrame) -> None:
    """Draw the teacher's logged losses against the iteration: the gradient penalty on its own axes, being much smaller."""
    missing = [name for name in ("iteration", *LOSS_COLUMNS) if name not in losses.columns]
    if missing:
        raise PrivgenError(f"teacher loss series lacks the column(s) {missing}; rerun the train_teacher stage")
    figure, (loss_axes, penalty_axes) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    for name in LOSS_COLUMNS[:3]:
        loss_axes.plot(losses["iteration"], losses[name], marker=".", label=name)
    loss_axes.set_xlabel("generator iteration")
    loss_axes.set_title("critic and generator")
    loss_axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize="small", frameon=False)
    penalty_axes.plot(losses["iteration"], losses["gradient_penalty"], marker=".", color="#c44e52")
    penalty_axes.set_xlabel("generator iteration")
    penalty_axes.set_title("gradient penalty")
    save_figure(figure, path)


def save_tradeoff(
    path: str | Path,
    mu: np.ndarray,
    accuracy: np.ndarray,
    labels: list[str],
    baseline: float | None,
    student: str,
    gamma: float | None,
    strips: list[tuple[str, np.ndarray]],
) -> None:
    """Draw accuracy against mu, one labelled point per experiment, with the real-data accuracy as a dashed line.

    Each of `strips`, a title and an H x W x C uint8 image, is drawn in its own panel under the curve.
    """
    curve_height, strip_height = 4.0, 0.8
    figure = plt.figure(figsize=(5.5, curve_height + strip_height * len(strips)), dpi=100)
    panels = figure.add_gridspec(1 + len(strips), 1, height_ratios=[curve_height, *[strip_height] * len(strips)])
    axes = figure.add_subplot(panels[0])
    for index, (title, strip) in enumerate(strips, start=1):
        strip_axes = figure.add_subplot(panels[index])
        strip_axes.imshow(strip[..., 0] if strip.shape[2] == 1 else strip, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        strip_axes.set_title(title, fontsize=9)
        strip_axes.axis("off")
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
    save_figure(figure, path)
