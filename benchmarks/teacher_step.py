"""Time one teacher training step (5 critic updates and 1 generator update).

Compares the SELU written with `exp` (privgen.activations) against `torch.selu`, whose CPU
kernel goes through the slow `expm1`. At the default shape (1 x 28 x 28) the step trains on the
embedded MNIST digits. Other shapes use random images, because the step time does not depend
on the pixel values.

    python -m benchmarks.teacher_step [--width 32] [--channels 1] [--size 28] [--steps 30] [--repeats 3]

Each variant runs in a fresh subprocess and prints the best of `repeats` means over `steps`
steps, after 3 warm-up steps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time, torch
sys.path.insert(0, {root!r})
from privgen import gan
import numpy as np
from privgen.data import ImageSet
from privgen.datasets import prepare_dataset
from privgen.teacher import TeacherConfig, TeacherTrainer
if {torch_selu}:
    gan.SELU, gan.selu = torch.nn.SELU, torch.selu
if ({channels}, {size}) == (1, 28):
    train_set, _ = prepare_dataset("mnist5k", 0.2, seed=42)
else:
    pixels = np.random.default_rng(0).integers(0, 256, size=(2000, {channels}, {size}, {size}), dtype=np.uint8)
    train_set = ImageSet(pixels, np.arange(2000, dtype=np.int64) % 10, [str(label) for label in range(10)])
trainer = TeacherTrainer(TeacherConfig(width={width}, seed=42), train_set, torch.device("cpu"))
for _ in range(3):
    trainer.train_step()
means = []
for _ in range({repeats}):
    start = time.perf_counter()
    for _ in range({steps}):
        trainer.train_step()
    means.append((time.perf_counter() - start) / {steps})
print(json.dumps(min(means)))
"""

VARIANTS = {
    "torch.selu": {"torch_selu": True},
    "exp-based SELU (shipped)": {"torch_selu": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=32, help="gan.width (default 32)")
    parser.add_argument("--channels", type=int, default=1, help="image channels (default 1)")
    parser.add_argument("--size", type=int, default=28, help="image height and width (default 28)")
    parser.add_argument("--only-shipped", action="store_true", help="time only the shipped SELU")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per repeat (default 30)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats, best one reported (default 3)")
    arguments = parser.parse_args()

    import torch

    shape = f"{arguments.channels} x {arguments.size} x {arguments.size}"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, images {shape}, width {arguments.width}, batch 64, 5 critic steps")
    for name, flags in VARIANTS.items():
        if arguments.only_shipped and flags["torch_selu"]:
            continue
        code = CHILD.format(
            root=str(ROOT), width=arguments.width, channels=arguments.channels, size=arguments.size,
            steps=arguments.steps, repeats=arguments.repeats, **flags,
        )  # fmt: skip
        started = time.perf_counter()
        output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        seconds = json.loads(output.strip().splitlines()[-1])
        print(f"{name:30s} {seconds:.3f} s/step  (run took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
