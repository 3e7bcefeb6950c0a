"""The datasheet of a release: what the artificial images are, how they were made and what they leak.

`build_datasheet` gathers it from the pipeline's metrics files and the teacher checkpoint into
one JSON-ready dict; `render_markdown` turns that dict into the short DATASHEET.md.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from pathlib import Path

import privgen
from privgen.data import ImageSet
from privgen.errors import PrivgenError
from privgen.files import require_file, sha256_file

DATASHEET_FORMAT = 1

# Metrics file (metrics/NAME.json) -> the stage that writes it.
METRIC_STAGES = {
    "data": "prepare",
    "teacher": "train_teacher",
    "privacy": "estimate_privacy",
    "students": "train_students",
    "attack": "attack",
}

# Keys the datasheet reads by name; everything else in a metrics file is carried over as it is.
REQUIRED_KEYS = {
    "data": ("dataset", "image_shape", "num_classes", "train", "test"),
    "teacher": (),
    "privacy": ("mu", "gamma", "mean_loss", "upper_semi_deviation", "pairs", "neighbours", "kl_k", "extractor", "dimension", "finite_sample"),
    "students": (),
    "attack": ("mlp_real", "mlp_artificial"),
}
ATTACK_KEYS = ("mean_nearest_rmse", "mean_class_mean_rmse")

# Teacher settings that change the weights; the log and checkpoint intervals do not.
TEACHER_SETTINGS = ("sigma", "clip_norm", "conditioning", "iterations", "critic_iterations", "gradient_penalty", "batch_size", "learning_rate", "width", "seed")


def load_metrics(metrics_dir: str | Path) -> dict[str, dict]:
    """Read every metrics file the datasheet needs, checking the keys it reads by name."""
    metrics = {}
    for name, stage in METRIC_STAGES.items():
        path = require_file(Path(metrics_dir) / f"{name}.json", f"python -m stages.{stage}")
        try:
            content = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise PrivgenError(f"metrics file {str(path)!r} is not valid JSON ({error}); rerun the {stage} stage") from None
        if not isinstance(content, dict):
            raise PrivgenError(f"metrics file {str(path)!r} contains a JSON {type(content).__name__}, not an object; rerun the {stage} stage")
        missing = [key for key in REQUIRED_KEYS[name] if key not in content]
        if missing:
            raise PrivgenError(f"metrics file {str(path)!r} lacks the key(s) {missing}; rerun the {stage} stage")
        metrics[name] = content

    for model, sources in metrics["students"].items():
        for source in ("artificial", "real"):
            if not isinstance(sources, dict) or "test_accuracy" not in sources.get(source, {}):
                raise PrivgenError(f"metrics file 'students.json' lacks {model}.{source}.test_accuracy; rerun the train_students stage")
    for target in ("mlp_real", "mlp_artificial"):
        missing = [key for key in ATTACK_KEYS if key not in metrics["attack"][target]]
        if missing:
            raise PrivgenError(f"metrics file 'attack.json' lacks {target}.{missing[0]}; rerun the attack stage")
    return metrics


def without_lists(value):
    """Copy a JSON value, keeping numbers, strings and nested objects but dropping every list.

    Metrics files are copied into the public datasheet this way because a list in them may
    hold indices of real training images (for example the examples an attack picked).
    """
    if isinstance(value, dict):
        filtered = {key: without_lists(item) for key, item in value.items() if not isinstance(item, list)}
        return {key: item for key, item in filtered.items() if item != {}}
    return value


def software_versions() -> dict[str, str]:
    """Return the versions of Python and of the libraries that produced and wrote the release."""
    versions = {"python": platform.python_version(), "privgen": privgen.__version__}
    for package in ("torch", "torchvision", "numpy", "pillow"):
        versions[package] = importlib.metadata.version(package)
    return versions


def hash_inputs(paths: list[str | Path]) -> dict[str, str]:
    """Map each input path, as given, to the SHA-256 of its content."""
    return {str(path): sha256_file(path) for path in paths}


def build_datasheet(
    artificial: ImageSet,
    class_folders: list[str],
    teacher_state: dict,
    metrics: dict[str, dict],
    inputs: dict[str, str],
    checks: dict[str, int],
) -> dict:
    """Assemble the datasheet of a release of `artificial` from the teacher checkpoint and the metrics.

    `inputs` maps input paths to their SHA-256, and `checks` is the result of the exact-copy check
    (`real_images_compared`, `exact_copies_of_real_images`).
    """
    data = metrics["data"]
    if teacher_state["class_names"] != artificial.class_names:
        raise PrivgenError(
            f"the artificial set has classes {artificial.class_names} but the teacher was trained on "
            f"{teacher_state['class_names']}; rerun the generate stage"
        )
    if list(data["image_shape"]) != list(artificial.image_shape) or data["num_classes"] != artificial.num_classes:
        raise PrivgenError(
            f"the artificial set has images of shape {list(artificial.image_shape)} in {artificial.num_classes} classes but "
            f"metrics/data.json describes {data['image_shape']} in {data['num_classes']}; rerun the pipeline with `dvc repro`"
        )

    config = teacher_state["config"]
    teacher = {name: config[name] for name in TEACHER_SETTINGS}
    teacher["iterations_trained"] = teacher_state["iteration"]
    teacher["final_losses"] = without_lists({key: value for key, value in metrics["teacher"].items() if key != "iterations"})
    if teacher["sigma"] > 0:
        critic = f"whose critic has a differentially private layer (Gaussian noise sigma = {teacher['sigma']}, clip norm {teacher['clip_norm']})"
    else:
        critic = "with a vanilla critic (sigma = 0: its feature layer adds no noise)"

    return {
        "format": DATASHEET_FORMAT,
        "description": (
            f"{len(artificial)} labelled artificial images sampled from a conditional WGAN-GP {critic}, trained on the "
            f"private dataset {data['dataset']!r} (Triastcyn and Faltings, arXiv 1803.03148). The release holds no real image."
        ),
        "source": {
            "dataset": data["dataset"],
            "image_shape": list(data["image_shape"]),
            "num_classes": data["num_classes"],
            "class_names": list(artificial.class_names),
            "real_train_images": data["train"]["total"],
            "real_test_images": data["test"]["total"],
        },
        "release": {
            "images": len(artificial),
            "per_class": artificial.counts_per_class(),
            "class_folders": list(class_folders),
        },
        "teacher": teacher,
        "privacy": without_lists(metrics["privacy"]),
        "students": without_lists(metrics["students"]),
        "attack": without_lists(metrics["attack"]),
        "checks": dict(checks),
        "software": software_versions(),
        "inputs": dict(sorted(inputs.items())),
    }


def format_value(value) -> str:
    """Format a metric for a table: 4 significant digits for floats, `n/a` for null."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def privacy_sentence(privacy: dict) -> str:
    """Describe mu, gamma and how they were estimated in two or three sentences."""
    finite = privacy["finite_sample"]
    if finite.get("mu") is not None:
        finite_text = f"The finite-sample bound of Saw, Yang and Mo (1984) for {privacy['pairs']} pairs gives mu = {format_value(finite['mu'])} at the same gamma."
    else:
        finite_text = (
            f"With {privacy['pairs']} pairs the finite-sample bound of Saw, Yang and Mo (1984) supports gamma only down to "
            f"{format_value(finite.get('min_gamma'))}, where it gives mu = {format_value(finite.get('mu_at_min_gamma'))}."
        )
    return (
        f"The expected privacy loss exceeds mu = {format_value(privacy['mu'])} with probability at most gamma = "
        f"{format_value(privacy['gamma'])}. It was estimated from {privacy['pairs']} random real training examples: for each, "
        f"the {privacy['neighbours']} nearest artificial points were removed and KL(artificial || artificial without them) "
        f"was estimated with the k-NN estimator of Perez-Cruz (2008), neighbour order {privacy['kl_k']}, on "
        f"{privacy['extractor']} features of dimension {privacy['dimension']}; a one-sided Chebyshev bound with the upper "
        f"semi-deviation turns the {privacy['pairs']} estimates (mean {format_value(privacy['mean_loss'])}, upper "
        f"semi-deviation {format_value(privacy['upper_semi_deviation'])}) into mu. {finite_text} mu bounds the expected "
        "privacy loss of this one dataset; it is not the epsilon of differential privacy, which bounds the maximum."
    )


def render_markdown(datasheet: dict) -> str:
    """Write the datasheet as a short Markdown page for people; datasheet.json contains every value."""
    sections = [
        [f"# Datasheet: artificial {datasheet['source']['dataset']} images", "", datasheet["description"]],
        files_section(datasheet),
        source_section(datasheet),
        teacher_section(datasheet["teacher"]),
        ["## Privacy", "", privacy_sentence(datasheet["privacy"])],
        students_section(datasheet["students"]),
        attack_section(datasheet["attack"]),
        checks_section(datasheet),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def files_section(datasheet: dict) -> list[str]:
    shape = " x ".join(str(side) for side in datasheet["source"]["image_shape"])
    first_folder = datasheet["release"]["class_folders"][0]
    return [
        "## Files",
        "",
        "| file | content |",
        "|---|---|",
        f"| `images/<folder>/<index>.png` | one PNG per image ({shape}, channels x height x width); `<index>` is its row in `artificial.npz` |",
        "| `artificial.npz` | `images` (uint8, N x C x H x W), `labels` (int64) and `class_names`, the format of privgen's prepared sets |",
        "| `labels.csv` | `file`, `label` and `class_name` of every image, in the row order of `artificial.npz` |",
        "| `datasheet.json` | every value of this page, plus the SHA-256 of the inputs the release was built from |",
        "| `SHA256SUMS` | the SHA-256 of every other file; check with `sha256sum -c SHA256SUMS` inside this folder |",
        "",
        f"Class folders are named `<label>_<class name>` with the label zero-padded (`{first_folder}` holds label 0). "
        "torchvision's `ImageFolder` sorts folders by name, so its `class_to_idx` maps each folder to the label in "
        "`labels.csv` and `artificial.npz`. `ImageFolder` opens every PNG as RGB unless given another loader.",
    ]


def source_section(datasheet: dict) -> list[str]:
    source, release = datasheet["source"], datasheet["release"]
    per_class = ", ".join(f"{count} of class {name}" for name, count in release["per_class"].items())
    return [
        "## Source and sizes",
        "",
        f"Private dataset `{source['dataset']}`: {source['real_train_images']} training images (the teacher's input) and "
        f"{source['real_test_images']} test images, {source['num_classes']} classes. Released: {release['images']} "
        f"artificial images, {per_class}.",
    ]


def teacher_section(teacher: dict) -> list[str]:
    return [
        "## Teacher",
        "",
        f"sigma = {teacher['sigma']} (noise of the DP critic layer; 0 is the vanilla critic), clip norm C = "
        f"{teacher['clip_norm']}, conditioning `{teacher['conditioning']}`, {teacher['iterations_trained']} of "
        f"{teacher['iterations']} generator iterations, {teacher['critic_iterations']} critic steps each, batch "
        f"{teacher['batch_size']}, learning rate {teacher['learning_rate']}, width {teacher['width']}, seed {teacher['seed']}.",
    ]


def students_section(students: dict) -> list[str]:
    lines = [
        "## Students",
        "",
        "Test accuracy on the real test split of each model trained only on the artificial images, against the same "
        "model trained on the real training images.",
        "",
        "| model | artificial | real (baseline) | drop |",
        "|---|---|---|---|",
    ]
    for model, result in students.items():
        drop = result.get("accuracy_drop", result["real"]["test_accuracy"] - result["artificial"]["test_accuracy"])
        lines.append(
            f"| {model} | {format_value(result['artificial']['test_accuracy'])} | "
            f"{format_value(result['real']['test_accuracy'])} | {format_value(drop)} |"
        )
    return lines


def attack_section(attack: dict) -> list[str]:
    lines = [
        "## Model inversion",
        "",
        "RMS pixel distance (pixels in [0, 1]) of each class's reconstruction to the nearest real training image of "
        "that class and to the class mean, averaged over classes; lower means more leakage.",
        "",
        "| target model | to nearest real image | to class mean |",
        "|---|---|---|",
    ]
    for target in ("mlp_real", "mlp_artificial"):
        lines.append(f"| `{target}` | {format_value(attack[target]['mean_nearest_rmse'])} | {format_value(attack[target]['mean_class_mean_rmse'])} |")
    others = [name for name in attack if name not in ("mlp_real", "mlp_artificial")]
    if others:
        lines += ["", "Further attack results in `datasheet.json` under `attack`: " + ", ".join(f"`{name}`" for name in others) + "."]
    return lines


def checks_section(datasheet: dict) -> list[str]:
    checks, software = datasheet["checks"], datasheet["software"]
    versions = ", ".join(f"{name} {version}" for name, version in software.items())
    return [
        "## Checks and software",
        "",
        f"Released images equal to one of the {checks['real_images_compared']} real images (training and test split) "
        f"pixel for pixel: {checks['exact_copies_of_real_images']}. Built with {versions}.",
    ]
