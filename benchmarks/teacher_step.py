"""Time one teacher training step (5 critic updates and 1 generator update) on the prepared train split.

Compares the SELU written with `exp` (privgen.activations) against `torch.selu`, whose CPU
kernel goes through the slow `expm1`.

    python -m benchmarks.teacher_step [--width 32] [--steps 30] [--repeats 3]

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
from privgen.datasets import prepare_dataset
from privgen.teacher import TeacherConfig, TeacherTrainer
if {torch_selu}:
    gan.SELU, gan.selu = torch.nn.SELU, torch.selu
train_set, _ = prepare_dataset("mnist5k", 0.2, seed=42)
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
    parser.add_argument("--steps", type=int, default=30, help="timed steps per repeat (default 30)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats, best one reported (default 3)")
    arguments = parser.parse_args()

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, width {arguments.width}, batch 64, 5 critic steps")
    for name, flags in VARIANTS.items():
        code = CHILD.format(root=str(ROOT), width=arguments.width, steps=arguments.steps, repeats=arguments.repeats, **flags)
        started = time.perf_counter()
        output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        seconds = json.loads(output.strip().splitlines()[-1])
        print(f"{name:30s} {seconds:.3f} s/step  (run took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
