"""A static HTML report of a release: the figures of every stage and the datasheet's tables on one page.

The report folder contains index.html and the PNG files it shows, side by side. The page loads
nothing else: no scripts, fonts or style sheets from elsewhere, and every image by a relative
file name. It shows real training images (the nearest-neighbour grid and the first row of the
inversion grid), so it is for the data owner, not for publication with the release.
"""

from __future__ import annotations

import html
import re
import shutil
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd

from privgen.datasheet import format_value, privacy_sentence
from privgen.errors import PrivgenError
from privgen.files import atomic_directory, require_file
from privgen.plots import save_loss_curves

# Figures copied from the plots folder: file name -> the stage that writes it.
COPIED_FIGURES = {
    "artificial_samples.png": "generate",
    "nearest_real.png": "estimate_privacy",
    "privacy_losses.png": "estimate_privacy",
    "inversion.png": "attack",
}
LOSS_SERIES = "teacher_losses.csv"
LOSS_FIGURE = "teacher_losses.png"

STYLE = """
body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; } figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { font-size: 0.9rem; color: #555; }
.warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.6rem 0.8rem; }
code { font-size: 0.9em; }
"""


@dataclass
class ReportInputs:
    """The figure files the report copies and the teacher's loss series it draws."""

    figures: dict[str, Path]
    losses: pd.DataFrame


def load_report_inputs(plots_dir: str | Path) -> ReportInputs:
    """Check that every figure exists and read the loss series, before any output is written."""
    plots_dir = Path(plots_dir)
    figures = {name: require_file(plots_dir / name, f"python -m stages.{stage}") for name, stage in COPIED_FIGURES.items()}
    series = require_file(plots_dir / LOSS_SERIES, "python -m stages.train_teacher")
    try:
        losses = pd.read_csv(series)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise PrivgenError(f"loss series {str(series)!r} is not a readable CSV file ({error}); rerun the train_teacher stage") from None
    if losses.empty:
        raise PrivgenError(f"loss series {str(series)!r} has no rows; rerun the train_teacher stage")
    return ReportInputs(figures, losses)


def write_report(folder: str | Path, datasheet: dict, inputs: ReportInputs) -> None:
    """Build the report folder (index.html and its figures) beside `folder` and swap it in when complete."""
    with atomic_directory(folder) as report:
        for name, source in inputs.figures.items():
            shutil.copyfile(source, report / name)
        save_loss_curves(report / LOSS_FIGURE, inputs.losses)
        (report / "index.html").write_text(render_html(datasheet))
        problems = report_problems(report)
        if problems:
            raise PrivgenError(f"the report page has {len(problems)} bad reference(s), first {problems[0]}; this is a bug in privgen.report")


def cell(value) -> str:
    """Format one table cell, numbers right-aligned."""
    text = html.escape(format_value(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="number">{text}</td>'
    return f"<td>{text}</td>"


def table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(cell(value) for value in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def flatten(values: dict, prefix: str = "") -> list[list]:
    """Turn nested objects into [dotted key, value] rows, leaving out per-class details."""
    rows = []
    for key, value in values.items():
        if key == "per_class":
            continue
        if isinstance(value, dict):
            rows += flatten(value, f"{prefix}{key}.")
        else:
            rows.append([f"{prefix}{key}", value])
    return rows


def figure(file_name: str, caption: str) -> str:
    return (
        f'<figure><img src="{html.escape(file_name)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def render_html(datasheet: dict) -> str:
    """Write the report page from a datasheet; the figures must lie beside it under their plot names."""
    source, release, teacher = datasheet["source"], datasheet["release"], datasheet["teacher"]
    title = f"privgen release: artificial {source['dataset']} images"
    students = [
        [
            model,
            result["artificial"]["test_accuracy"],
            result["real"]["test_accuracy"],
            result.get("accuracy_drop", result["real"]["test_accuracy"] - result["artificial"]["test_accuracy"]),
            result.get("validation_loss_correlation"),
        ]
        for model, result in datasheet["students"].items()
    ]
    attack_rows = [[target, *row] for target, result in datasheet["attack"].items() for row in flatten(result)]
    teacher_settings = [[name, value] for name, value in teacher.items() if name != "final_losses"]

    sections = [
        f"<h1>{html.escape(title)}</h1>",
        '<p class="warning">This report shows real training images: the second row of each pair in the '
        "nearest-neighbour grid and the first row of the inversion grid. Keep it with the data owner and "
        "publish only the release folder, which holds artificial images alone.</p>",
        f"<p>{html.escape(datasheet['description'])}</p>",
        table(["released", "value"], [
            ["artificial images", release["images"]],
            ["classes", source["num_classes"]],
            ["mu", datasheet["privacy"]["mu"]],
            ["gamma", datasheet["privacy"]["gamma"]],
        ]),
        "<h2>Artificial images</h2>",
        figure("artificial_samples.png", "Artificial images, one row per class."),
        "<h2>Teacher</h2>",
        figure(LOSS_FIGURE, "Teacher losses against the generator iteration, each point the mean over one logging interval."),
        table(["setting", "value"], teacher_settings),
        table(["final loss", "value"], flatten(teacher["final_losses"])),
        "<h2>Privacy</h2>",
        f"<p>{html.escape(privacy_sentence(datasheet['privacy']))}</p>",
        figure("privacy_losses.png", "Histogram of the per-pair privacy loss estimates behind mu."),
        figure("nearest_real.png", "Artificial images (first row of each pair) above their nearest real training images in feature space (second row)."),
        table(["estimate", "value"], flatten(datasheet["privacy"])),
        "<h2>Students</h2>",
        "<p>Test accuracy on the real test split of each model trained only on artificial images, against the same "
        "model trained on the real training images. The correlation is that of the validation losses on artificial "
        "and on real data across epochs.</p>",
        table(["model", "artificial", "real (baseline)", "drop", "validation loss correlation"], students),
        "<h2>Model inversion</h2>",
        figure("inversion.png", "First row: a real training image of each class. Rows below: each attacked model's reconstruction of every class."),
        "<p>RMS pixel distances (pixels in [0, 1]) of the reconstructions to the nearest real training image of their "
        "class and to the class mean; lower means more leakage.</p>",
        table(["target", "measure", "value"], attack_rows),
        "<h2>Provenance</h2>",
        table(["source", "value"], [[name, value] for name, value in source.items() if name != "class_names"]),
        table(["check", "value"], flatten(datasheet["checks"])),
        table(["software", "version"], flatten(datasheet["software"])),
        table(["input", "SHA-256"], [[path, digest] for path, digest in datasheet["inputs"].items()]),
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# Attributes through which an HTML page loads or links another resource.
REFERENCE_ATTRIBUTES = {"src", "href", "srcset", "poster", "data", "action", "background"}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")


class ReferenceCollector(HTMLParser):
    """Collect every URL that a page references through attributes, inline styles and style elements."""

    def __init__(self) -> None:
        super().__init__()
        self.references: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name == "srcset":
                self.references += [candidate.split()[0] for candidate in value.split(",") if candidate.strip()]
            elif name in REFERENCE_ATTRIBUTES:
                self.references.append(value)
            elif name == "style":
                self._add_css(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._add_css(data)

    def _add_css(self, text: str) -> None:
        self.references += [url or imported for url, imported in CSS_URL.findall(text)]


def report_problems(folder: str | Path) -> list[str]:
    """List every remote reference and every missing local file of the page folder/index.html.

    A reference is remote when it starts with `//` or has a scheme other than `data:` (http:,
    https:, file: and so on). Any other reference must name a file inside `folder`.
    """
    folder = Path(folder)
    collector = ReferenceCollector()
    collector.feed((folder / "index.html").read_text())
    problems = []
    for reference in collector.references:
        parts = urlsplit(reference)
        if parts.scheme == "data" or reference.startswith("#"):
            continue
        if parts.scheme or reference.startswith("//"):
            problems.append(f"remote reference {reference!r}")
            continue
        target = (folder / unquote(parts.path)).resolve()
        if not target.is_relative_to(folder.resolve()):
            problems.append(f"reference {reference!r} points outside the report folder")
        elif not target.is_file():
            problems.append(f"missing file {reference!r}")
    return problems
