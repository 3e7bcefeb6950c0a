"""Stage train_teacher: train the conditional WGAN-GP teacher with the DP critic on the real train split.

Reads data/prepared/train.npz. Writes models/teacher.pt (weights, optimiser states, iteration,
params), plots/teacher_losses.csv (interval means of the losses), plots/teacher_samples.png
(one row per class) and metrics/teacher.json. A checkpoint of the run is kept under
models/checkpoints/ so that an interrupted run resumes where it stopped.

Runs as one process, or as several under `torchrun --nproc_per_node=N -m stages.train_teacher`
(DistributedDataParallel, gloo on CPU, NCCL on CUDA): each process draws its own batches of
batch_size images, so the effective batch is N x batch_size, and only rank 0 logs and writes.
"""

from __future__ import annotations

import logging
from typing import Annotated

import numpy as np
import typer

from privgen.data import load_image_set
from privgen.distributed import start_process_group, stop_process_group
from privgen.files import write_csv, write_json
from privgen.gan import CONDITIONINGS
from privgen.images import save_grid
from privgen.runtime import seed_everything, stage_errors, start_stage
from privgen.sampling import sample
from privgen.teacher import TeacherConfig, TeacherTrainer

log = logging.getLogger("privgen.train_teacher")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
defaults = TeacherConfig()
SAMPLES_PER_CLASS = 10


@app.command()
def main(
    sigma: Annotated[float, typer.Option("--sigma", help="Noise scale of the DP critic layer; 0 gives the vanilla critic.")] = defaults.sigma,
    clip_norm: Annotated[float, typer.Option("--clip_norm", help="L2 bound C on the critic's 64-d feature vector.")] = defaults.clip_norm,
    iterations: Annotated[int, typer.Option("--iterations", help="Generator steps.")] = defaults.iterations,
    critic_iterations: Annotated[int, typer.Option("--critic_iterations", help="Critic steps per generator step.")] = defaults.critic_iterations,
    gradient_penalty: Annotated[float, typer.Option("--gradient_penalty", help="Weight lambda of the gradient penalty.")] = defaults.gradient_penalty,
    batch_size: Annotated[int, typer.Option("--batch_size", help="Images per critic and generator step.")] = defaults.batch_size,
    learning_rate: Annotated[float, typer.Option("--learning_rate", help="Adam learning rate of both networks.")] = defaults.learning_rate,
    width: Annotated[int, typer.Option("--width", help="Network width: channels of the first critic layer; the generator starts with twice as many.")] = defaults.width,
    conditioning: Annotated[str, typer.Option("--conditioning", help=f"How the critic sees the label: {', '.join(CONDITIONINGS)}.")] = defaults.conditioning,
    log_interval: Annotated[int, typer.Option("--log_interval", help="Generator steps per logged loss row.")] = defaults.log_interval,
    checkpoint_interval: Annotated[int, typer.Option("--checkpoint_interval", help="Generator steps between checkpoints.")] = defaults.checkpoint_interval,
    seed: Annotated[int, typer.Option("--seed", help="Seed of initialisation, batches and noise.")] = 42,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")] = "auto",
    train: Annotated[str, typer.Option("--train", help="Prepared real train split.")] = "data/prepared/train.npz",
    output: Annotated[str, typer.Option("--output", help="Final teacher checkpoint.")] = "models/teacher.pt",
    checkpoint_dir: Annotated[str, typer.Option("--checkpoint_dir", help="Folder of resumable checkpoints, one per run.")] = "models/checkpoints",
    losses: Annotated[str, typer.Option("--losses", help="CSV loss series (a DVC plot).")] = "plots/teacher_losses.csv",
    samples: Annotated[str, typer.Option("--samples", help="PNG grid of samples, one row per class.")] = "plots/teacher_samples.png",
    metrics: Annotated[str, typer.Option("--metrics", help="JSON file with the final losses.")] = "metrics/teacher.json",
) -> None:
    start_stage()
    with stage_errors():
        config = TeacherConfig(
            sigma=sigma, clip_norm=clip_norm, iterations=iterations, critic_iterations=critic_iterations,
            gradient_penalty=gradient_penalty, batch_size=batch_size, learning_rate=learning_rate, width=width,
            conditioning=conditioning, log_interval=log_interval, checkpoint_interval=checkpoint_interval, seed=seed,
        )  # fmt: skip
        config.validate()
        train_set = load_image_set(train)
        group, run_device = start_process_group(device)
        if not group.is_main:
            logging.getLogger("privgen").setLevel(logging.WARNING)
        try:
            train_and_write(config, train_set, group, run_device, checkpoint_dir, output, samples, losses, metrics)
        finally:
            stop_process_group()


def train_and_write(config: TeacherConfig, train_set, group, run_device, checkpoint_dir, output, samples, losses, metrics) -> None:
    seed_everything(config.seed)
    trainer = TeacherTrainer(config, train_set, run_device, group)
    checkpoint = trainer.checkpoint_path(checkpoint_dir)
    if trainer.resume(checkpoint):
        log.info("resuming from %s at iteration %d", checkpoint, trainer.iteration)
    log.info(
        "training teacher on %d images of shape %s on %s x %d: sigma %s, clip_norm %s, conditioning %s, width %d, %d iterations",
        len(train_set), train_set.image_shape, run_device, group.world_size, config.sigma, config.clip_norm,
        config.conditioning, config.width, config.iterations,
    )  # fmt: skip
    trainer.train(checkpoint_path=checkpoint)
    trainer.save(output)
    if not group.is_main:
        return

    grid_labels = np.repeat(np.arange(train_set.num_classes), SAMPLES_PER_CLASS)
    save_grid(samples, sample(trainer.generator.eval(), grid_labels, config.seed, run_device), columns=SAMPLES_PER_CLASS)
    history = trainer.history_frame()
    write_csv(losses, history)
    final = history.iloc[-1].to_dict()
    write_json(metrics, {"iterations": trainer.iteration, **{name: final[name] for name in history.columns if name != "iteration"}})

if __name__ == "__main__":
    app()
