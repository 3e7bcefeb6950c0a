"""The release stage and bundle: layout, round trips, provenance, and that no real image gets out."""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

from privgen.data import ImageSet, load_image_set
from privgen.datasheet import build_datasheet, load_metrics, render_markdown, without_lists
from privgen.errors import PrivgenError
from privgen.images import save_png
from privgen.release import check_no_real_copies, class_folder_names, find_exact_copies
from privgen.teacher import load_checkpoint
from release_workspace import ARTIFICIAL_SIZE, TEACHER_CONFIG, run_stage


@pytest.fixture(scope="module")
def artificial(workspace) -> ImageSet:
    return load_image_set(workspace / "data/artificial/train.npz")


@pytest.fixture(scope="module")
def datasheet(workspace) -> dict:
    return json.loads((workspace / "release/datasheet.json").read_text())


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png_bytes(image: np.ndarray, folder: Path) -> bytes:
    path = folder / "encoded.png"
    save_png(path, image)
    return path.read_bytes()


def lists_in(value) -> list[list]:
    """Every list anywhere inside a JSON value."""
    if isinstance(value, list):
        return [value] + [inner for item in value for inner in lists_in(item)]
    if isinstance(value, dict):
        return [inner for item in value.values() for inner in lists_in(item)]
    return []


# Layout and round trips


def test_class_folder_names_sort_in_label_order():
    names = class_folder_names([f"class {index}" for index in range(12)] + ["a/b", ""])
    assert names[0] == "00_class_0"
    assert names[12] == "12_a_b"
    assert names[13] == "13_"
    assert sorted(names) == names
    assert len(set(names)) == 14


def test_class_folder_names_pad_to_label_width():
    names = class_folder_names([str(index) for index in range(101)])
    assert names[0] == "000_0"
    assert names[100] == "100_100"
    assert sorted(names) == names


def test_release_layout(workspace):
    release = workspace / "release"
    assert sorted(path.name for path in release.iterdir()) == ["DATASHEET.md", "SHA256SUMS", "artificial.npz", "datasheet.json", "images", "labels.csv"]
    assert sorted(path.name for path in (release / "images").iterdir()) == class_folder_names([str(digit) for digit in range(10)])
    assert len(list((release / "images").rglob("*.png"))) == ARTIFICIAL_SIZE


def test_release_npz_only_artificial_arrays(workspace, artificial):
    with np.load(workspace / "release/artificial.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["class_names", "images", "labels"]
        assert np.array_equal(archive["images"], artificial.images)
        assert np.array_equal(archive["labels"], artificial.labels)
        assert list(archive["class_names"]) == artificial.class_names


def test_labels_csv_matches_npz_rows(workspace, artificial):
    labels = pd.read_csv(workspace / "release/labels.csv", dtype={"class_name": str})
    assert list(labels.columns) == ["file", "label", "class_name"]
    assert labels["label"].tolist() == artificial.labels.tolist()
    assert labels["class_name"].tolist() == [artificial.class_names[label] for label in artificial.labels]
    for index, file in enumerate(labels["file"]):
        pixels = np.asarray(Image.open(workspace / "release" / file))
        assert np.array_equal(pixels, artificial.images[index, 0]), file


def test_image_folder_loads_same_images_and_labels(workspace, artificial):
    dataset = ImageFolder(workspace / "release/images")
    assert dataset.class_to_idx == {name: label for label, name in enumerate(class_folder_names(artificial.class_names))}
    assert len(dataset) == len(artificial)
    for (path, target), (picture, loaded_target) in zip(dataset.samples, dataset):
        index = int(Path(path).stem)
        pixels = np.asarray(picture)  # ImageFolder opens grey PNGs as RGB: three equal channels
        assert target == loaded_target == artificial.labels[index]
        for channel in range(3):
            assert np.array_equal(pixels[..., channel], artificial.images[index, 0]), path


def test_checksums_cover_every_other_file(workspace):
    release = workspace / "release"
    listed = {}
    for line in (release / "SHA256SUMS").read_text().splitlines():
        expected, name = line.split("  ", 1)
        listed[name] = expected
    files = {path.relative_to(release).as_posix() for path in release.rglob("*") if path.is_file()}
    assert set(listed) == files - {"SHA256SUMS"}
    for name, expected in listed.items():
        assert digest((release / name).read_bytes()) == expected, name


def test_release_is_reproducible(workspace, tmp_path):
    result = run_stage(workspace, "--release", str(tmp_path / "again"), "--report", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "again/SHA256SUMS").read_text() == (workspace / "release/SHA256SUMS").read_text()


# Provenance in the datasheet


def test_datasheet_states_teacher_and_metrics(workspace, datasheet):
    metrics = load_metrics(workspace / "metrics")
    assert datasheet["source"]["dataset"] == "mnist5k"
    assert datasheet["source"]["real_train_images"] == 100
    assert datasheet["source"]["real_test_images"] == 30
    assert datasheet["release"]["images"] == ARTIFICIAL_SIZE
    assert set(datasheet["release"]["per_class"].values()) == {ARTIFICIAL_SIZE // 10}
    teacher = datasheet["teacher"]
    assert (teacher["sigma"], teacher["clip_norm"], teacher["conditioning"]) == (TEACHER_CONFIG.sigma, TEACHER_CONFIG.clip_norm, TEACHER_CONFIG.conditioning)
    assert teacher["iterations"] == teacher["iterations_trained"] == TEACHER_CONFIG.iterations
    assert datasheet["privacy"] == metrics["privacy"]
    assert datasheet["students"]["cnn"]["real"]["test_accuracy"] == metrics["students"]["cnn"]["real"]["test_accuracy"]
    for target in ("mlp_real", "mlp_artificial"):
        assert datasheet["attack"][target]["mean_nearest_rmse"] == metrics["attack"][target]["mean_nearest_rmse"]
    assert datasheet["checks"] == {"real_images_compared": 130, "exact_copies_of_real_images": 0}


def test_datasheet_hashes_inputs(workspace, datasheet):
    inputs = datasheet["inputs"]
    assert len(inputs) == 7
    for path, expected in inputs.items():
        assert digest(Path(path).read_bytes()) == expected, path
    assert not any("prepared" in path for path in inputs)


def test_datasheet_software_versions(datasheet):
    import torchvision

    import privgen

    software = datasheet["software"]
    assert software["python"] == ".".join(str(part) for part in sys.version_info[:3])
    assert software["numpy"] == np.__version__
    assert software["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert software["torchvision"].split("+")[0] == torchvision.__version__.split("+")[0]
    assert software["privgen"] == privgen.__version__


def test_datasheet_markdown_key_values(workspace, datasheet):
    markdown = (workspace / "release/DATASHEET.md").read_text()
    assert f"mu = {datasheet['privacy']['mu']:.4g}" in markdown
    assert f"sigma = {TEACHER_CONFIG.sigma}" in markdown
    assert "`00_0` holds label 0" in markdown
    assert "not the epsilon of differential privacy" in markdown
    assert f"| `mlp_real` | {datasheet['attack']['mlp_real']['mean_nearest_rmse']:.4g} |" in markdown


# No real image or index in the bundle


def test_release_holds_no_real_image(workspace, tmp_path, datasheet):
    real = [load_image_set(workspace / f"data/prepared/{split}.npz") for split in ("train", "test")]
    real_pixels = {image.tobytes() for split in real for image in split.images}
    real_files = {digest(image.tobytes()) for split in real for image in split.images}
    real_files |= {digest(png_bytes(image, tmp_path)) for split in real for image in split.images}
    assert len(real_pixels) == 130

    for path in (workspace / "release").rglob("*"):
        if path.is_file():
            assert digest(path.read_bytes()) not in real_files, path
        if path.suffix == ".png":
            assert np.asarray(Image.open(path))[None].tobytes() not in real_pixels, path
    with np.load(workspace / "release/artificial.npz") as archive:
        assert not any(image.tobytes() in real_pixels for image in archive["images"])

    # The only lists are the image shape and per-class names; an index list would be longer.
    for found in lists_in(datasheet):
        assert found in ([1, 28, 28], datasheet["source"]["class_names"], datasheet["release"]["class_folders"]), found


def test_exact_copy_of_real_image_is_rejected(artificial, workspace):
    train = load_image_set(workspace / "data/prepared/train.npz")
    leaked = ImageSet(artificial.images.copy(), artificial.labels, artificial.class_names)
    leaked.images[7] = train.images[3]
    assert find_exact_copies(leaked, train).tolist() == [7]
    assert find_exact_copies(artificial, train).tolist() == []
    with pytest.raises(PrivgenError, match=r"1 artificial image\(s\) equal real train images.*artificial index 7"):
        check_no_real_copies(leaked, {"train": train})


def test_real_set_of_other_shape_is_rejected(artificial):
    other = ImageSet(np.zeros((2, 3, 8, 8), dtype=np.uint8), np.zeros(2, dtype=np.int64), artificial.class_names)
    with pytest.raises(PrivgenError, match=r"shape \(1, 28, 28\) but the real test images \(3, 8, 8\)"):
        check_no_real_copies(artificial, {"test": other})


def test_without_lists_drops_index_lists():
    attack = {"mlp_real": {"mean_nearest_rmse": 0.4}, "membership": {"auc": 0.51, "members": [3, 17, 42], "per_class": {"0": {"auc": 0.5}}}}
    assert without_lists(attack) == {"mlp_real": {"mean_nearest_rmse": 0.4}, "membership": {"auc": 0.51, "per_class": {"0": {"auc": 0.5}}}}
    assert without_lists({"only": [1, 2]}) == {}


def test_further_attack_entries_kept(workspace, artificial):
    metrics = load_metrics(workspace / "metrics")
    metrics["attack"]["membership_dataset"] = {"roc_auc": 0.52, "member_indices": [5, 9]}
    state = load_checkpoint(workspace / "models/teacher.pt")
    sheet = build_datasheet(artificial, class_folder_names(artificial.class_names), state, metrics, {}, {"real_images_compared": 0, "exact_copies_of_real_images": 0})
    assert sheet["attack"]["membership_dataset"] == {"roc_auc": 0.52}
    assert "`membership_dataset`" in render_markdown(sheet)


# Bad input


def test_vanilla_critic_is_described_as_such(workspace, artificial):
    state = load_checkpoint(workspace / "models/teacher.pt")
    state["config"]["sigma"] = 0.0
    sheet = build_datasheet(artificial, class_folder_names(artificial.class_names), state, load_metrics(workspace / "metrics"), {}, {"real_images_compared": 0, "exact_copies_of_real_images": 0})
    assert "vanilla critic (sigma = 0" in sheet["description"]
    assert "differentially private" not in sheet["description"]


def test_teacher_of_other_classes_is_rejected(workspace, artificial):
    state = load_checkpoint(workspace / "models/teacher.pt")
    state["class_names"] = ["cat", "dog"]
    with pytest.raises(PrivgenError, match=r"teacher was trained on \['cat', 'dog'\]; rerun the generate stage"):
        build_datasheet(artificial, class_folder_names(artificial.class_names), state, load_metrics(workspace / "metrics"), {}, {})


def test_metrics_without_mu_rejected(workspace, tmp_path):
    for path in (workspace / "metrics").iterdir():
        (tmp_path / path.name).write_text(path.read_text())
    privacy = json.loads((tmp_path / "privacy.json").read_text())
    del privacy["mu"]
    (tmp_path / "privacy.json").write_text(json.dumps(privacy))
    with pytest.raises(PrivgenError, match=r"privacy.json' lacks the key\(s\) \['mu'\]; rerun the estimate_privacy stage"):
        load_metrics(tmp_path)


def test_attack_metrics_without_rmse_are_rejected(workspace, tmp_path):
    for path in (workspace / "metrics").iterdir():
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "attack.json").write_text(json.dumps({"mlp_real": {"mean_nearest_rmse": 0.4}, "mlp_artificial": {}}))
    with pytest.raises(PrivgenError, match=r"lacks mlp_real.mean_class_mean_rmse; rerun the attack stage"):
        load_metrics(tmp_path)


def test_missing_metrics_keeps_previous_release(workspace, tmp_path):
    before = (workspace / "release/SHA256SUMS").read_text()
    missing = workspace / "metrics/students.json"
    kept = missing.read_bytes()
    missing.unlink()
    try:
        result = run_stage(workspace)
    finally:
        missing.write_bytes(kept)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert "students.json' is missing; run `python -m stages.train_students` first" in errors[0]
    assert (workspace / "release/SHA256SUMS").read_text() == before
    assert not [path.name for path in workspace.iterdir() if path.name.startswith(".")]
