"""Networks of the teacher: a conditional generator and a critic with a differentially private layer.

The layout follows Triastcyn & Faltings, "Generating Artificial Data for Private Deep Learning"
(arXiv 1803.03148), section 5.2. The critic has four SELU convolutions, a linear layer to a
64-d feature vector, the DP layer and a linear output. The generator has one linear layer,
three SELU transposed convolutions, max pooling down to the image size and tanh. The paper gives no channel
counts. Here `width` w sets them: the critic has w, 2w, 4w and 4w channels, and the generator
starts from 2w channels at a quarter of the image size, which at w = 32 on 32x32 images is the
paper's 4096-d first layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from privgen.activations import SELU, selu

CONDITIONINGS = ("projection", "concat")
NOISE_DIM = 128
FEATURE_DIM = 64


class DPLayer(nn.Module):
    """Gaussian mechanism on a feature vector: clip its L2 norm to `clip_norm`, then add N(0, sigma^2 I).

    The noise is drawn afresh on every forward pass in training mode, so real, generated and
    interpolated inputs each get their own draw. In evaluation mode the layer only clips.
    `sigma = 0` gives the vanilla critic.
    """

    def __init__(self, clip_norm: float, sigma: float):
        super().__init__()
        self.clip_norm = clip_norm
        self.sigma = sigma

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        norms = features.norm(dim=1, keepdim=True)
        clipped = features / torch.clamp(norms / self.clip_norm, min=1.0)
        if self.training and self.sigma > 0:
            clipped = clipped + self.sigma * torch.randn_like(clipped)
        return clipped

    def extra_repr(self) -> str:
        return f"clip_norm={self.clip_norm}, sigma={self.sigma}"


def _generator_start_size(image_size: int) -> int:
    """Return the side of the generator's first feature map: three doublings then a 2x2 max pool reach the image size or more."""
    return math.ceil(image_size / 4)


class Generator(nn.Module):
    """Map noise and a class label to an image in [-1, 1]."""

    def __init__(self, num_classes: int, channels: int, image_size: int, width: int):
        super().__init__()
        self.num_classes = num_classes
        self.image_size = image_size
        self.start_size = _generator_start_size(image_size)
        self.start_channels = 2 * width
        half_width = max(1, width // 2)
        self.project = nn.Linear(NOISE_DIM + num_classes, self.start_channels * self.start_size**2)
        self.upsample = nn.Sequential(
            # state size: (2w) x s x s, with s = H/4 (7 for 28x28 images)
            nn.ConvTranspose2d(2 * width, width, kernel_size=4, stride=2, padding=1),
            SELU(),
            # state size: w x 2s x 2s
            nn.ConvTranspose2d(width, half_width, kernel_size=4, stride=2, padding=1),
            SELU(),
            # state size: (w/2) x 4s x 4s
            nn.ConvTranspose2d(half_width, channels, kernel_size=4, stride=2, padding=1),
            # state size: C x 8s x 8s, twice the image size
        )
        # NOTE: the paper applies SELU after all three transposed convolutions. Here the last one
        # feeds the pool and tanh directly, because SELU before tanh would squash negative pixels.
        self.pool = nn.MaxPool2d(kernel_size=2)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(labels, self.num_classes).to(noise.dtype)
        hidden = selu(self.project(torch.cat([noise, one_hot], dim=1)))
        # -> [B, 2w, s, s]
        hidden = hidden.view(-1, self.start_channels, self.start_size, self.start_size)
        # -> [B, C, 4s, 4s]; sizes that are not a multiple of 4 lose a border row and column
        pooled = self.pool(self.upsample(hidden))[..., : self.image_size, : self.image_size]
        return torch.tanh(pooled)


class Critic(nn.Module):
    """Score images with a Wasserstein critic whose 64-d feature vector passes the DP layer.

    `conditioning="concat"` appends the one-hot label to the flattened convolution features
    before the linear layer, as in the paper. `conditioning="projection"` adds the inner product
    of a learned label embedding with the DP feature vector to the output (Miyato and Koyama 2018),
    which gives the critic a class signal that is not almost additive.
    """

    def __init__(
        self,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int,
        clip_norm: float,
        sigma: float,
        conditioning: str,
    ):
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}")
        self.num_classes = num_classes
        self.conditioning = conditioning
        self.convolutions = nn.Sequential(
            # state size: C x H x W
            nn.Conv2d(channels, width, kernel_size=3, stride=2, padding=1),
            SELU(),
            # state size: w x H/2 x W/2
            nn.Conv2d(width, 2 * width, kernel_size=3, stride=2, padding=1),
            SELU(),
            # state size: 2w x H/4 x W/4
            nn.Conv2d(2 * width, 4 * width, kernel_size=3, stride=2, padding=1),
            SELU(),
            # state size: 4w x H/8 x W/8 (rounded up)
            nn.Conv2d(4 * width, 4 * width, kernel_size=3, stride=1, padding=1),
            SELU(),
        )
        conv_size = image_size
        for _ in range(3):
            conv_size = (conv_size - 1) // 2 + 1
        flat_dim = 4 * width * conv_size**2
        label_dim = num_classes if conditioning == "concat" else 0
        self.to_features = nn.Linear(flat_dim + label_dim, FEATURE_DIM)
        self.dp_layer = DPLayer(clip_norm=clip_norm, sigma=sigma)
        self.output = nn.Linear(FEATURE_DIM, 1)
        if conditioning == "projection":
            self.label_embedding = nn.Embedding(num_classes, FEATURE_DIM)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # -> [B, 4w * h * w]
        flat = self.convolutions(images).flatten(start_dim=1)
        if self.conditioning == "concat":
            one_hot = F.one_hot(labels, self.num_classes).to(flat.dtype)
            flat = torch.cat([flat, one_hot], dim=1)
        features = self.dp_layer(self.to_features(flat))
        score = self.output(features).squeeze(1)
        if self.conditioning == "projection":
            score = score + (self.label_embedding(labels) * features).sum(dim=1)
        return score
