"""Check the HTML report: every referenced file exists, nothing is remote, and headless Chromium renders it.

Run from the repository root after `dvc repro`:

    python -m scripts.check_report                      # checks report/
    python -m scripts.check_report report --screenshot report.png

Chromium renders a copy of the page with a probe script appended, because the report itself has
no script. Once the page has loaded, the probe lists the images whose pixels did not load. Debian
ships the browser as the package `chromium` (`apt-get install chromium`). Exit status 0 means
the page rendered with every image; 1 comes with one `error:` line.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from privgen.errors import PrivgenError
from privgen.report import report_problems
from privgen.runtime import stage_errors

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Headless flags that keep Chromium off the network, away from any existing profile, and off
# /dev/shm, which containers often keep small.
HEADLESS_FLAGS = (
    "--headless", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
# Milliseconds of virtual time Chromium grants the page to load before it dumps the DOM.
LOAD_BUDGET_MS = 10_000
BROWSER_TIMEOUT_S = 120
PROBE_ID = "render-probe"
PROBE = (
    '<script>window.addEventListener("load", () => {'
    " const images = Array.from(document.images);"
    ' const broken = images.filter((image) => !image.complete || image.naturalWidth === 0).map((image) => image.getAttribute("src"));'
    ' const probe = document.createElement("pre");'
    f' probe.id = "{PROBE_ID}";'
    " probe.textContent = JSON.stringify({images: images.length, broken: broken});"
    " document.body.appendChild(probe);"
    " });</script>"
)


def find_browser(name: str | None) -> str:
    candidates = [name] if name else list(BROWSERS)
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise PrivgenError(f"Chromium not found (tried {', '.join(candidates)}); install it with `apt-get install chromium` or pass --chromium PATH")


def run_browser(browser: str, profile: Path, arguments: list[str]) -> str:
    command = [browser, *HEADLESS_FLAGS, f"--user-data-dir={profile}", *arguments]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PrivgenError(f"{browser} timed out after {BROWSER_TIMEOUT_S} s rendering the report; run it by hand to see why") from None
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PrivgenError(f"{browser} failed with exit status {result.returncode} ({last_line})")
    return result.stdout


def render_and_probe(folder: Path, browser: str, screenshot: Path | None) -> dict:
    """Render a probed copy of folder/index.html; return the probe's image count and broken images."""
    with tempfile.TemporaryDirectory(prefix="privgen-report-check-") as scratch:
        copy = Path(scratch) / "report"
        shutil.copytree(folder, copy)
        page = (copy / "index.html").read_text()
        if "</body>" not in page:
            raise PrivgenError(f"{folder / 'index.html'} has no </body> tag; regenerate the report with the release stage")
        (copy / "probe.html").write_text(page.replace("</body>", f"{PROBE}</body>"))

        dom = run_browser(browser, Path(scratch) / "profile-probe", [f"--virtual-time-budget={LOAD_BUDGET_MS}", "--dump-dom", (copy / "probe.html").as_uri()])
        match = re.search(rf'<pre id="{PROBE_ID}">(.*?)</pre>', dom, re.DOTALL)
        if match is None:
            raise PrivgenError(f"{browser} rendered the page but its load event never fired; open {folder / 'index.html'} to see why")
        probe = json.loads(match.group(1))
        if screenshot is not None:
            run_browser(browser, Path(scratch) / "profile-screenshot", ["--window-size=1000,4000", f"--screenshot={screenshot.resolve()}", (copy / "index.html").as_uri()])
    return probe


@app.command()
def main(
    folder: Annotated[Path, typer.Argument(help="Report folder holding index.html.")] = Path("report"),
    screenshot: Annotated[Path | None, typer.Option("--screenshot", help="Also save a 1000 x 4000 pixel screenshot of the page here.")] = None,
    chromium: Annotated[str | None, typer.Option("--chromium", help="Chromium executable; default: the first of chromium, chromium-browser, google-chrome on PATH.")] = None,
) -> None:
    with stage_errors():
        if not (folder / "index.html").is_file():
            raise PrivgenError(f"{folder / 'index.html'} is missing; run `dvc repro release` first")
        problems = report_problems(folder)
        if problems:
            raise PrivgenError(f"{folder / 'index.html'} has {len(problems)} bad reference(s): {'; '.join(problems)}")
        probe = render_and_probe(folder, find_browser(chromium), screenshot)
        if probe["broken"]:
            raise PrivgenError(f"{len(probe['broken'])} of {probe['images']} images did not load in Chromium: {', '.join(probe['broken'])}")
        if probe["images"] == 0:
            raise PrivgenError(f"{folder / 'index.html'} rendered without any image; regenerate the report with the release stage")
        print(f"ok: {folder / 'index.html'} rendered in Chromium with all {probe['images']} images loaded")


if __name__ == "__main__":
    app()
