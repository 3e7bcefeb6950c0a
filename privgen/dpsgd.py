"""DP-SGD training (Abadi et al. 2016) with Opacus: the differentially private baseline that the attacks compare against.

Each step samples a batch by Poisson sampling: every example joins with probability
q = 1 / ceil(N / batch_size), close to batch_size / N. The step clips each example's gradient to
L2 norm `max_grad_norm`, adds Gaussian noise of standard deviation
`noise_multiplier * max_grad_norm` to their sum, and takes an Adam step. The accountant turns
the noise multiplier, q and the number of steps into the epsilon that the training spends at a
fixed delta.

The model trains for a fixed number of epochs and keeps its last weights. Choosing an epoch on
a validation split of the private data would be a further release that the accountant does
not count.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from privgen.data import ImageSet, images_to_tensor
from privgen.errors import PrivgenError
from privgen.students import build_student

log = logging.getLogger("privgen.dpsgd")

ACCOUNTANTS = ("rdp", "prv")


@dataclass
class DPSGDConfig:
    """DP-SGD settings; the names match the `dp_` keys of the `attack` section of params.yaml."""

    noise_multiplier: float = 3.0
    max_grad_norm: float = 1.0
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 0.005
    delta: float = 1e-5
    accountant: str = "rdp"

    def validate(self) -> None:
        if not self.noise_multiplier > 0:
            raise PrivgenError(f"attack.dp_noise_multiplier is {self.noise_multiplier}; it must be positive, for example 3.0")
        if not self.max_grad_norm > 0:
            raise PrivgenError(f"attack.dp_max_grad_norm is {self.max_grad_norm}; it must be positive, for example 1.0")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise PrivgenError(f"attack.dp_{name} is {getattr(self, name)}; it must be a positive integer")
        if not self.learning_rate > 0:
            raise PrivgenError(f"attack.dp_learning_rate is {self.learning_rate}; it must be positive, for example 0.005")
        if not 0 < self.delta < 1:
            raise PrivgenError(f"attack.dp_delta is {self.delta}; it must lie in (0, 1), for example 1e-5")
        if self.accountant not in ACCOUNTANTS:
            raise PrivgenError(f"attack.dp_accountant is {self.accountant!r}; choose one of {', '.join(ACCOUNTANTS)}")

    def steps_per_epoch(self, dataset_size: int) -> int:
        """Opacus samples each example with probability 1 / (this number) and takes this many steps per epoch."""
        return math.ceil(dataset_size / self.batch_size)


def create_accountant(name: str):
    from opacus.accountants import PRVAccountant, RDPAccountant

    return RDPAccountant() if name == "rdp" else PRVAccountant()


def planned_epsilon(config: DPSGDConfig, dataset_size: int) -> float:
    """Return the epsilon that training with `config` on `dataset_size` examples spends at `config.delta`, without training."""
    config.validate()
    steps_per_epoch = config.steps_per_epoch(dataset_size)
    accountant = create_accountant(config.accountant)
    for _ in range(config.epochs * steps_per_epoch):
        accountant.step(noise_multiplier=config.noise_multiplier, sample_rate=1 / steps_per_epoch)
    return float(accountant.get_epsilon(config.delta))


@dataclass
class DPSGDResult:
    """The trained model (its plain module, without Opacus hooks) and the privacy it spent."""

    model: nn.Module
    epsilon: float
    steps: int
    sample_rate: float


def train_dp_student(name: str, train_set: ImageSet, config: DPSGDConfig, device: torch.device, seed: int) -> DPSGDResult:
    """Train the student `name` (see `build_student`) on `train_set` with DP-SGD.

    Returns the model with the accountant's epsilon at `config.delta`.

    Per-example gradient norms come from Opacus's ghost clipping, which never stores a
    gradient per example, so an MLP with a million weights trains at a batch size of a few
    hundred on a CPU.
    """
    from opacus import PrivacyEngine

    config.validate()
    torch.manual_seed(seed)
    model = build_student(name, train_set.image_shape, train_set.num_classes).to(device).train()
    dataset = TensorDataset(images_to_tensor(train_set.images, device), torch.from_numpy(train_set.labels).to(device))
    # Seeded generators make the batches and the noise repeat for a seed. Opacus's secure_mode
    # draws both from the operating system's random source instead, which a production release needs.
    sampling_generator = torch.Generator().manual_seed(seed)
    # Opacus 1.6 draws the noise on the parameters' device with this generator, so it lives there too.
    # NOTE: only CPU runs are tested; training on CUDA has not been run.
    noise_generator = torch.Generator(device=device).manual_seed(seed + 1)
    loader = DataLoader(dataset, batch_size=config.batch_size, generator=sampling_generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    with warnings.catch_warnings():
        # Opacus warns that secure_mode is off (the comment above explains why), and PyTorch warns on
        # every step that ghost clipping's backward hooks see no input that requires a gradient.
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        engine = PrivacyEngine(accountant=config.accountant)
        private_model, private_optimizer, criterion, private_loader = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            criterion=nn.CrossEntropyLoss(),
            noise_multiplier=config.noise_multiplier,
            max_grad_norm=config.max_grad_norm,
            noise_generator=noise_generator,
            grad_sample_mode="ghost",
        )

        steps = 0
        for epoch in range(1, config.epochs + 1):
            # One pass of Poisson-sampled batches. Every step clips, adds noise and is counted by
            # the accountant, even on an empty batch, where the update is noise alone.
            loss_sum, examples = 0.0, 0
            for images, labels in private_loader:
                private_optimizer.zero_grad(set_to_none=True)
                loss = criterion(private_model(images), labels)
                loss.backward()
                private_optimizer.step()
                steps += 1
                if len(labels):
                    loss_sum += loss.item() * len(labels)
                    examples += len(labels)
            log.info(
                "DP-SGD epoch %d/%d: mean training loss %.4f, epsilon so far %.3f at delta = %g",
                epoch, config.epochs, loss_sum / max(examples, 1), engine.get_epsilon(config.delta), config.delta,
            )  # fmt: skip

    # Copy the trained weights into a fresh module, because Opacus leaves its hooks on `model`.
    plain_model = build_student(name, train_set.image_shape, train_set.num_classes)
    plain_model.load_state_dict(model.state_dict())
    epsilon = float(engine.get_epsilon(config.delta))
    return DPSGDResult(model=plain_model.to(device).eval(), epsilon=epsilon, steps=steps, sample_rate=1 / len(private_loader))
