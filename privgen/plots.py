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
