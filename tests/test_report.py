"""The HTML report: local figures only, the metrics tables, and rendering in headless Chromium."""

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from privgen.errors import PrivgenError
from privgen.report import load_report_inputs, report_problems
from release_workspace import ROOT

FIGURES = {"artificial_samples.png", "nearest_real.png", "privacy_losses.png", "inversion.png", "teacher_losses.png"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium); the render check needs a browser")


class AttributeCollector(HTMLParser):
    """Every (tag, attribute, value) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.attributes += [(tag, name, value) for name, value in attrs if value is not None]


def page_attributes(report: Path) -> list[tuple[str, str, str]]:
    collector = AttributeCollector()
    collector.feed((report / "index.html").read_text())
    return collector.attributes


def check_report(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.check_report", str(folder)], cwd=ROOT, capture_output=True, text=True)


def test_report_images_exist_beside_page(workspace):
    report = workspace / "report"
    sources = [value for tag, name, value in page_attributes(report) if tag == "img" and name == "src"]
    assert sorted(sources) == sorted(FIGURES)
    for source in sources:
        assert (report / source).is_file(), source
        assert Image.open(report / source).format == "PNG"


def test_report_references_nothing_remote(workspace):
    page = (workspace / "report/index.html").read_text()
    for tag, name, value in page_attributes(workspace / "report"):
        assert not value.startswith(("http:", "https:", "//", "file:")), (tag, name, value)
    for remote in ("http:", "https:", "//"):
        assert remote not in page, remote
    assert "<script" not in page
    assert "<link" not in page


def test_report_copies_figures_unchanged(workspace):
    for name in FIGURES - {"teacher_losses.png"}:
        assert (workspace / "report" / name).read_bytes() == (workspace / "plots" / name).read_bytes(), name


def test_report_draws_loss_curves(workspace):
    picture = Image.open(workspace / "report/teacher_losses.png")
    assert picture.size == (900, 360)
    pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    # The gradient penalty curve is drawn in #c44e52.
    assert np.any(np.all(pixels == (0xC4, 0x4E, 0x52), axis=1))


def test_report_tables_show_metrics(workspace):
    page = (workspace / "report/index.html").read_text()
    datasheet = json.loads((workspace / "release/datasheet.json").read_text())
    assert f"<td>mu</td><td class=\"number\">{datasheet['privacy']['mu']:.4g}</td>" in page
    cnn = datasheet["students"]["cnn"]
    assert f"<td>cnn</td><td class=\"number\">{cnn['artificial']['test_accuracy']:.4g}</td><td class=\"number\">{cnn['real']['test_accuracy']:.4g}</td>" in page
    assert f"<td>mlp_real</td><td>mean_nearest_rmse</td><td class=\"number\">{datasheet['attack']['mlp_real']['mean_nearest_rmse']:.4g}</td>" in page
    assert "shows real training images" in page


def test_report_problems_lists_remote_and_missing(tmp_path):
    (tmp_path / "here.png").write_bytes(b"png")
    (tmp_path / "index.html").write_text(
        '<html><head><link rel="stylesheet" href="//cdn.example.org/style.css">'
        "<style>body { background: url('https://example.org/a.png'); }</style></head><body>"
        '<img src="here.png"><img src="gone.png"><img src="http://example.org/b.png">'
        '<img src="data:image/png;base64,AAAA"><img src="../outside.png"><a href="#top">top</a></body></html>'
    )
    assert report_problems(tmp_path) == [
        "remote reference '//cdn.example.org/style.css'",
        "remote reference 'https://example.org/a.png'",
        "missing file 'gone.png'",
        "remote reference 'http://example.org/b.png'",
        "reference '../outside.png' points outside the report folder",
    ]


def test_report_of_pipeline_has_no_problems(workspace):
    assert report_problems(workspace / "report") == []


def test_missing_figure_names_its_stage(workspace, tmp_path):
    shutil.copytree(workspace / "plots", tmp_path / "plots")
    (tmp_path / "plots/inversion.png").unlink()
    with pytest.raises(PrivgenError, match=r"inversion.png' is missing; run `python -m stages.attack` first"):
        load_report_inputs(tmp_path / "plots")


def test_loss_series_without_column_is_rejected(workspace, tmp_path):
    shutil.copytree(workspace / "plots", tmp_path / "plots")
    losses = pd.read_csv(tmp_path / "plots/teacher_losses.csv").drop(columns=["wasserstein"])
    losses.to_csv(tmp_path / "plots/teacher_losses.csv", index=False)
    inputs = load_report_inputs(tmp_path / "plots")
    from privgen.plots import save_loss_curves

    with pytest.raises(PrivgenError, match=r"lacks the column\(s\) \['wasserstein'\]; rerun the train_teacher stage"):
        save_loss_curves(tmp_path / "losses.png", inputs.losses)


def test_check_script_missing_image(workspace, tmp_path):
    shutil.copytree(workspace / "report", tmp_path / "report")
    (tmp_path / "report/nearest_real.png").unlink()
    result = check_report(tmp_path / "report")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'report/index.html'} has 1 bad reference(s): missing file 'nearest_real.png'"


@needs_chromium
def test_report_renders_in_chromium(workspace, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "scripts.check_report", str(workspace / "report"), "--screenshot", str(tmp_path / "page.png")],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "with all 5 images loaded" in result.stdout
    screenshot = np.asarray(Image.open(tmp_path / "page.png").convert("L"))
    assert screenshot.shape == (4000, 1000)
    assert screenshot.min() < 50  # text and the black backgrounds of the digit grids


@needs_chromium
def test_chromium_check_undecodable_image(workspace, tmp_path):
    shutil.copytree(workspace / "report", tmp_path / "report")
    (tmp_path / "report/inversion.png").write_bytes(b"not a PNG file")
    result = check_report(tmp_path / "report")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: 1 of 5 images did not load in Chromium: inversion.png"
