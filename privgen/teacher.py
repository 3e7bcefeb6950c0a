"""Training of the teacher: a conditional WGAN-GP (Gulrajani et al. 2017) with a DP critic layer.

Settings follow Triastcyn & Faltings (arXiv 1803.03148), section 5.2: Adam with learning rate
1e-4 and betas (0, 0.9), batch 64, five critic steps per generator step, gradient-penalty
weight 10. Only the critic reads real images, so only the critic carries the Gaussian mechanism.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from privgen.data import ImageSet, images_to_tensor
from privgen.distributed import ProcessGroup, any_rank, gather_objects, mean_over_ranks
from privgen.errors import PrivgenError
from privgen.files import save_torch
from privgen.gan import CONDITIONINGS, NOISE_DIM, Critic, Generator
from privgen.runtime import console

log = logging.getLogger("privgen.teacher")

CHECKPOINT_FORMAT = 1
# Modules of this package whose source determines the trained weights: a change to any of them
# starts a new run instead of resuming an old checkpoint.
TRAINING_MODULES = ("activations.py", "data.py", "distributed.py", "gan.py", "teacher.py")


@dataclass
class TeacherConfig:
    """Hyper-parameters of the teacher; the names match the `gan` section of params.yaml."""

    sigma: float = 1.5
    clip_norm: float = 1.0
    iterations: int = 3000
    critic_iterations: int = 5
    gradient_penalty: float = 10.0
    batch_size: int = 64
    learning_rate: float = 1e-4
    width: int = 32
    conditioning: str = "projection"
    log_interval: int = 100
    checkpoint_interval: int = 500
    seed: int = 0

    def validate(self) -> None:
        """Raise PrivgenError naming the first setting that is out of range."""
        if not math.isfinite(self.sigma) or self.sigma < 0:
            raise PrivgenError(f"gan.sigma is {self.sigma}; it must be 0 (vanilla critic) or positive, for example 1.5")
        if not math.isfinite(self.clip_norm) or self.clip_norm <= 0:
            raise PrivgenError(f"gan.clip_norm is {self.clip_norm}; it must be positive, for example 1.0")
        for name in ("iterations", "critic_iterations", "batch_size", "width", "log_interval", "checkpoint_interval"):
            value = getattr(self, name)
            if value < 1:
                raise PrivgenError(f"gan.{name} is {value}; it must be a positive integer")
        if self.gradient_penalty < 0:
            raise PrivgenError(f"gan.gradient_penalty is {self.gradient_penalty}; it must be 0 or positive, for example 10")
        if not self.learning_rate > 0:
            raise PrivgenError(f"gan.learning_rate is {self.learning_rate}; it must be positive, for example 0.0001")
        if self.conditioning not in CONDITIONINGS:
            raise PrivgenError(f"gan.conditioning is {self.conditioning!r}; choose one of {', '.join(CONDITIONINGS)}")

    def run_key(self, data_fingerprint: str) -> str:
        """Hash the settings, data and training code that define a run, so a checkpoint resumes only the same run.

        The logging and checkpoint intervals are left out because they do not change the weights.
        """
        identity = dataclasses.asdict(self)
        for name in ("log_interval", "checkpoint_interval"):
            identity.pop(name)
        identity["data"] = data_fingerprint
        identity["code"] = code_fingerprint()
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def code_fingerprint(package: Path = Path(__file__).parent) -> str:
    """Hash the source of the modules in `package` that determine the trained weights."""
    digest = hashlib.sha256()
    for module in TRAINING_MODULES:
        digest.update(module.encode())
        digest.update((package / module).read_bytes())
    return digest.hexdigest()[:16]


def fingerprint(image_set: ImageSet) -> str:
    """Hash the images, labels and class names of a set."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(image_set.images).tobytes())
    digest.update(np.ascontiguousarray(image_set.labels).tobytes())
    digest.update("\n".join(image_set.class_names).encode())
    return digest.hexdigest()[:16]


def build_networks(config: TeacherConfig, num_classes: int, image_shape: tuple[int, int, int]) -> tuple[Generator, Critic]:
    channels, height, width = image_shape
    if height != width:
        raise PrivgenError(f"images are {height}x{width}; the teacher needs square images, so crop them in prepare")
    generator = Generator(num_classes, channels, height, config.width)
    critic = Critic(num_classes, channels, height, config.width, config.clip_norm, config.sigma, config.conditioning)
    return generator, critic


class StopRequest:
    """Remember a SIGINT or SIGTERM so the loop can save a checkpoint before it exits."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame) -> None:
        self.signal_number = number


class TeacherTrainer:
    """State of one teacher run: networks, optimisers, random generators, iteration and loss history.

    Under torchrun each process trains on its own batches of `batch_size` images, so the
    effective batch is batch_size x world_size. DistributedDataParallel averages the gradients
    of critic and generator, so all processes keep identical weights. Process r draws batches
    and noise from seed + r; with one process that is the plain seed.
    """

    def __init__(self, config: TeacherConfig, train_set: ImageSet, device: torch.device, group: ProcessGroup = ProcessGroup()):
        config.validate()
        self.config = config
        self.device = device
        self.group = group
        self.class_names = train_set.class_names
        self.image_shape = train_set.image_shape
        self.num_classes = train_set.num_classes
        self.data_fingerprint = fingerprint(train_set)
        self.real_images = images_to_tensor(train_set.images, device)
        self.real_labels = torch.from_numpy(train_set.labels).to(device)

        # Rank 0's initial weights win: DistributedDataParallel broadcasts them to the others.
        torch.manual_seed(config.seed + group.rank)
        self.generator, self.critic = build_networks(config, self.num_classes, self.image_shape)
        self.generator.to(device)
        self.critic.to(device)
        # The wrappers that average gradients across processes; the plain modules otherwise.
        self.generator_trained, self.critic_trained = self.generator, self.critic
        if group.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [device.index] if device.type == "cuda" else None
            self.generator_trained = DistributedDataParallel(self.generator, device_ids=device_ids)
            self.critic_trained = DistributedDataParallel(self.critic, device_ids=device_ids)
        adam = dict(lr=config.learning_rate, betas=(0.0, 0.9))
        self.generator_optimizer = torch.optim.Adam(self.generator.parameters(), **adam)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), **adam)
        # Batches are drawn with their own generator, so resuming restores the exact sequence.
        self.batch_rng = torch.Generator().manual_seed(config.seed + group.rank)
        self.iteration = 0
        self.history: list[dict] = []

    # Checkpoints

    def _random_state(self) -> dict:
        return {
            "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "batch_rng": self.batch_rng.get_state(),
        }

    def state_dict(self) -> dict:
        """Return the whole training state; under torchrun a collective call that every process must make."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": dataclasses.asdict(self.config),
            "run_key": self.config.run_key(self.data_fingerprint),
            "data_fingerprint": self.data_fingerprint,
            "class_names": self.class_names,
            "image_shape": list(self.image_shape),
            "world_size": self.group.world_size,
            "iteration": self.iteration,
            "generator": self.generator.state_dict(),
            "critic": self.critic.state_dict(),
            "generator_optimizer": self.generator_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            # One entry per process, in rank order.
            "random_states": gather_objects(self._random_state(), self.group),
            "history": self.history,
        }

    def save(self, path: str | Path) -> None:
        """Write the training state atomically from rank 0, so an interrupted save keeps the previous file."""
        state = self.state_dict()
        if self.group.is_main:
            save_torch(path, state)

    def checkpoint_path(self, folder: str | Path) -> Path:
        """Return this run's resumable checkpoint in `folder`, named by the hash of its params and data."""
        return Path(folder) / f"teacher-{self.config.run_key(self.data_fingerprint)}.pt"

    def resume(self, path: str | Path) -> bool:
        """Load `path` if it exists; return whether training resumes from it."""
        if not Path(path).is_file():
            return False
        self.load(path)
        return True

    def load(self, path: str | Path) -> None:
        """Restore a checkpoint of this same run; raise PrivgenError if it belongs to another."""
        state = load_checkpoint(path)
        expected = self.config.run_key(self.data_fingerprint)
        if state["run_key"] != expected or list(state["image_shape"]) != list(self.image_shape):
            raise PrivgenError(
                f"checkpoint {str(path)!r} was trained with other params, data or training code (image shape "
                f"{tuple(state['image_shape'])}, conditioning {state['config']['conditioning']!r}); "
                "delete it to start a new run"
            )
        if state["world_size"] != self.group.world_size:
            raise PrivgenError(
                f"checkpoint {str(path)!r} was written by {state['world_size']} processes but {self.group.world_size} "
                f"are running; resume with torchrun --nproc_per_node={state['world_size']}, or delete it to start again"
            )
        self.generator.load_state_dict(state["generator"])
        self.critic.load_state_dict(state["critic"])
        self.generator_optimizer.load_state_dict(state["generator_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        random_state = state["random_states"][self.group.rank]
        torch.set_rng_state(random_state["cpu_rng"])
        if random_state["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(random_state["cuda_rng"], self.device)
        self.batch_rng.set_state(random_state["batch_rng"])
        self.iteration = state["iteration"]
        self.history = list(state["history"])

    # Training

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        indices = torch.randint(len(self.real_labels), (self.config.batch_size,), generator=self.batch_rng)
        indices = indices.to(self.device)
        return self.real_images[indices], self.real_labels[indices]

    def _noise(self, count: int) -> torch.Tensor:
        return torch.randn(count, NOISE_DIM, device=self.device)

    def critic_loss(self, real_images, fake_images, labels, mix) -> dict[str, torch.Tensor]:
        """Return the WGAN-GP critic loss and its parts for one batch, through the gradient-averaging critic.

        critic(fake) - critic(real) + lambda (||grad_x critic(x_hat)||_2 - 1)^2, with x_hat the
        interpolates mix * real + (1 - mix) * fake (Gulrajani et al. 2017).
        """
        critic_real = self.critic_trained(real_images, labels).mean()
        critic_fake = self.critic_trained(fake_images, labels).mean()
        interpolates = (mix * real_images + (1 - mix) * fake_images).requires_grad_(True)
        critic_interpolates = self.critic_trained(interpolates, labels)
        (gradients,) = torch.autograd.grad(critic_interpolates.sum(), interpolates, create_graph=True)
        # -> [B, C*H*W] before the norm
        gradient_penalty = ((gradients.flatten(start_dim=1).norm(dim=1) - 1) ** 2).mean()
        return {
            "critic_loss": critic_fake - critic_real + self.config.gradient_penalty * gradient_penalty,
            "gradient_penalty": gradient_penalty,
            "wasserstein": critic_real - critic_fake,
        }

    def train_step(self) -> dict[str, torch.Tensor]:
        """Run `critic_iterations` critic updates and one generator update; return the losses as tensors."""
        config = self.config

        # (1) Update the critic: maximise critic(real) - critic(fake), penalise gradient norms away from 1.
        for _ in range(config.critic_iterations):
            real_images, labels = self._real_batch()
            with torch.no_grad():
                fake_images = self.generator(self._noise(len(labels)), labels)
            mix = torch.rand(len(labels), 1, 1, 1, device=self.device)
            critic_losses = self.critic_loss(real_images, fake_images, labels, mix)
            self.critic_optimizer.zero_grad(set_to_none=True)
            critic_losses["critic_loss"].backward()
            self.critic_optimizer.step()

        # (2) Update the generator on uniformly drawn labels. The plain critic module scores the
        # images with its weights frozen, so no critic gradients are computed or averaged.
        self.critic.requires_grad_(False)
        fake_labels = torch.randint(self.num_classes, (config.batch_size,), generator=self.batch_rng).to(self.device)
        fake_images = self.generator_trained(self._noise(config.batch_size), fake_labels)
        generator_loss = -self.critic(fake_images, fake_labels).mean()
        self.generator_optimizer.zero_grad(set_to_none=True)
        generator_loss.backward()
        self.generator_optimizer.step()
        self.critic.requires_grad_(True)

        losses = {name: value.detach() for name, value in critic_losses.items()}
        losses["generator_loss"] = generator_loss.detach()
        return losses

    def train(self, checkpoint_path: str | Path | None = None, progress: bool = True) -> None:
        """Train up to `config.iterations` generator steps, resuming from `self.iteration`.

        Saves a checkpoint every `checkpoint_interval` steps and on SIGINT or SIGTERM (then raises
        KeyboardInterrupt). A NaN or infinite loss stops training with PrivgenError and leaves
        the last good checkpoint in place.
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        config = self.config
        self.generator.train()
        self.critic.train()
        interval_sums: dict[str, torch.Tensor] = {}
        interval_start, interval_steps = time.perf_counter(), 0
        columns = (TextColumn("teacher"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        show_progress = progress and self.group.is_main
        with StopRequest() as stop, Progress(*columns, console=console(), disable=not show_progress, transient=True) as bar:
            task = bar.add_task("train", total=config.iterations, completed=self.iteration)
            while self.iteration < config.iterations:
                losses = self.train_step()
                self.iteration += 1
                interval_steps += 1
                bar.advance(task)

                # Stop on a diverged loss before it reaches a checkpoint; every process stops together.
                diverged = not all(torch.isfinite(value) for value in losses.values())
                if any_rank(diverged, self.group, self.device):
                    values = ", ".join(f"{name} {value.item():.4g}" for name, value in losses.items())
                    raise PrivgenError(
                        f"teacher training diverged at iteration {self.iteration} ({values}); the last good "
                        "checkpoint is kept, so lower gan.learning_rate or raise gan.gradient_penalty and rerun"
                    )
                for name, value in losses.items():
                    interval_sums[name] = interval_sums.get(name, 0) + value

                # Log the interval means over all processes, and the time per step.
                if self.iteration % config.log_interval == 0 or self.iteration == config.iterations:
                    means = mean_over_ranks({name: float(total) / interval_steps for name, total in interval_sums.items()}, self.group, self.device)
                    row = {"iteration": self.iteration, **{name: round(value, 6) for name, value in means.items()}}
                    self.history.append(row)
                    seconds = (time.perf_counter() - interval_start) / interval_steps
                    log.info(
                        "iteration %d/%d  critic %.4f  penalty %.4f  wasserstein %.4f  generator %.4f  %.3f s/step",
                        self.iteration, config.iterations, row["critic_loss"], row["gradient_penalty"],
                        row["wasserstein"], row["generator_loss"], seconds,
                    )  # fmt: skip
                    interval_sums, interval_start, interval_steps = {}, time.perf_counter(), 0

                # Save a checkpoint at the interval, and before honouring a stop request that any process received.
                stopping = any_rank(stop.signal_number is not None, self.group, self.device)
                if checkpoint_path is not None and (self.iteration % config.checkpoint_interval == 0 or stopping):
                    self.save(checkpoint_path)
                if stopping:
                    log.warning("stopped by a signal at iteration %d; rerun to resume", self.iteration)
                    raise KeyboardInterrupt
        if checkpoint_path is not None:
            self.save(checkpoint_path)

    def history_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.history, columns=["iteration", "critic_loss", "gradient_penalty", "wasserstein", "generator_loss"])


def load_checkpoint(path: str | Path) -> dict:
    """Read a teacher checkpoint, raising PrivgenError if it is missing, unreadable or of another format."""
    path = Path(path)
    if not path.is_file():
        raise PrivgenError(f"teacher checkpoint {str(path)!r} is missing; run the train_teacher stage first (or `dvc repro`)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch.load raises many types for a damaged file
        raise PrivgenError(f"teacher checkpoint {str(path)!r} is unreadable ({type(error).__name__}); delete it and retrain") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise PrivgenError(f"teacher checkpoint {str(path)!r} is not a privgen teacher checkpoint; delete it and retrain")
    return state
