"""Stage release: package the artificial dataset for publication and write the report.

Reads data/artificial/train.npz, the teacher checkpoint's settings, metrics/*.json, the figures
under plots/ and, for the exact-copy check only, the real splits. Writes release/ (PNG files by
class, artificial.npz, labels.csv, datasheet.json, DATASHEET.md, SHA256SUMS) and report/
(index.html with its figures). Both folders are built beside their target and swapped in whole.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from privgen.data import load_image_set
from privgen.datasheet import METRIC_STAGES, build_datasheet, hash_inputs, load_metrics
from privgen.release import check_no_real_copies, class_folder_names, write_release
from privgen.report import load_report_inputs, write_report
from privgen.runtime import start_stage, stage_errors
from privgen.teacher import load_checkpoint

log = logging.getLogger("privgen.release")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    artificial: Annotated[str, typer.Option("--artificial", help="Artificial dataset (npz) to release.")] = "data/artificial/train.npz",
    teacher: Annotated[str, typer.Option("--teacher", help="Teacher checkpoint; only its settings and iteration are read.")] = "models/teacher.pt",
    train: Annotated[str, typer.Option("--train", help="Prepared real train split, read only to reject exact copies.")] = "data/prepared/train.npz",
    test: Annotated[str, typer.Option("--test", help="Prepared real test split, read only to reject exact copies.")] = "data/prepared/test.npz",
    metrics_dir: Annotated[str, typer.Option("--metrics_dir", help="Folder with data, teacher, privacy, students and attack .json.")] = "metrics",
    plots_dir: Annotated[str, typer.Option("--plots_dir", help="Folder with the figures and teacher_losses.csv.")] = "plots",
    release: Annotated[str, typer.Option("--release", help="Output folder of the release bundle.")] = "release",
    report: Annotated[str, typer.Option("--report", help="Output folder of the HTML report.")] = "report",
) -> None:
    start_stage()
    with stage_errors():
        # Read and check every input before either output is touched.
        artificial_set = load_image_set(artificial)
        checks = check_no_real_copies(artificial_set, {"train": load_image_set(train), "test": load_image_set(test)})
        teacher_state = load_checkpoint(teacher)
        metrics = load_metrics(metrics_dir)
        report_inputs = load_report_inputs(plots_dir)
        # The real splits are left out of the hashes: the release names no digest of private data.
        inputs = hash_inputs([artificial, teacher, *(Path(metrics_dir) / f"{name}.json" for name in METRIC_STAGES)])
        datasheet = build_datasheet(artificial_set, class_folder_names(artificial_set.class_names), teacher_state, metrics, inputs, checks)

        write_release(release, artificial_set, datasheet)
        write_report(report, datasheet, report_inputs)
        log.info(
            "released %d artificial images in %s (mu = %s at gamma = %s, no exact copy among %d real images); report in %s/index.html",
            len(artificial_set), release, datasheet["privacy"]["mu"], datasheet["privacy"]["gamma"], checks["real_images_compared"], report,
        )  # fmt: skip


if __name__ == "__main__":
    app()
