"""The release bundle: the artificial images as PNG files by class and as one npz, their labels and datasheet.

Layout of the bundle folder:

    images/<label>_<class name>/<index>.png   one image per file, <index> its row in artificial.npz
    artificial.npz                             images, labels and class_names (privgen's image set format)
    labels.csv                                 file, label, class_name, in the row order of artificial.npz
    datasheet.json, DATASHEET.md               provenance, privacy estimate, student and attack results
    SHA256SUMS                                 digests of every other file, for `sha256sum -c`
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from privgen.data import ImageSet, save_image_set
from privgen.datasheet import render_markdown
from privgen.errors import PrivgenError
from privgen.files import atomic_directory, sha256_file
from privgen.images import save_png

CHECKSUMS = "SHA256SUMS"


def class_folder_names(class_names: list[str]) -> list[str]:
    """Name one folder per class `<label>_<class name>`, the label zero-padded to at least two digits.

    Sorting these names as strings gives label order, which is the order in which torchvision's
    ImageFolder assigns class indices. Characters other than letters, digits, `.`, `-` and `_`
    in a class name become `_`, so that every name is a valid folder name.
    """
    width = max(2, len(str(len(class_names) - 1)))
    return [f"{label:0{width}d}_{re.sub(r'[^A-Za-z0-9._-]', '_', name)}" for label, name in enumerate(class_names)]


def find_exact_copies(artificial: ImageSet, real: ImageSet) -> np.ndarray:
    """Return the indices of artificial images whose pixels equal those of some real image of the same shape."""
    real_pixels = {image.tobytes() for image in np.ascontiguousarray(real.images)}
    copies = [index for index, image in enumerate(np.ascontiguousarray(artificial.images)) if image.tobytes() in real_pixels]
    return np.asarray(copies, dtype=np.int64)


def check_no_real_copies(artificial: ImageSet, real_sets: dict[str, ImageSet]) -> dict[str, int]:
    """Raise PrivgenError if an artificial image equals a real one; return the check's figures for the datasheet."""
    for split, real in real_sets.items():
        if artificial.image_shape != real.image_shape:
            raise PrivgenError(
                f"artificial images have shape {artificial.image_shape} but the real {split} images {real.image_shape}; "
                "rerun the pipeline with `dvc repro`"
            )
        copies = find_exact_copies(artificial, real)
        if len(copies):
            raise PrivgenError(
                f"{len(copies)} artificial image(s) equal real {split} images pixel for pixel (first: artificial index "
                f"{copies[0]}); the teacher memorised its input, so do not release them: retrain it with a larger gan.sigma"
            )
    return {"real_images_compared": sum(len(real) for real in real_sets.values()), "exact_copies_of_real_images": 0}


def write_release(folder: str | Path, artificial: ImageSet, datasheet: dict) -> None:
    """Build the bundle in a temporary folder beside `folder` and swap it in only when complete."""
    if len(artificial) == 0:
        raise PrivgenError("the artificial set is empty; set generate.size to a positive count or 0 and rerun generate")
    class_folders = class_folder_names(artificial.class_names)
    index_width = len(str(len(artificial) - 1))

    with atomic_directory(folder) as bundle:
        # One PNG per image under its class folder; the zero-padded index keeps file order equal to row order.
        files = []
        for class_folder in class_folders:
            (bundle / "images" / class_folder).mkdir(parents=True)
        for index, (image, label) in enumerate(zip(artificial.images, artificial.labels)):
            relative = f"images/{class_folders[label]}/{index:0{index_width}d}.png"
            save_png(bundle / relative, image)
            files.append(relative)

        # The same images as one npz, written from the checked arrays so that no other array travels along.
        save_image_set(bundle / "artificial.npz", artificial)
        labels = pd.DataFrame({
            "file": files,
            "label": artificial.labels,
            "class_name": [artificial.class_names[label] for label in artificial.labels],
        })  # fmt: skip
        labels.to_csv(bundle / "labels.csv", index=False)
        (bundle / "datasheet.json").write_text(json.dumps(datasheet, indent=2) + "\n")
        (bundle / "DATASHEET.md").write_text(render_markdown(datasheet))

        # Digests last, so that they cover every other file.
        listed = sorted(path.relative_to(bundle).as_posix() for path in bundle.rglob("*") if path.is_file())
        (bundle / CHECKSUMS).write_text("".join(f"{sha256_file(bundle / name)}  {name}\n" for name in listed))
