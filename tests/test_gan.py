import pytest
import torch

from privgen.activations import selu
from privgen.gan import FEATURE_DIM, NOISE_DIM, Critic, DPLayer, Generator


def test_dp_layer_clips_to_clip_norm():
    layer = DPLayer(clip_norm=1.0, sigma=0.0).train()
    features = torch.randn(256, FEATURE_DIM) * 10
    clipped = layer(features)
    assert torch.allclose(clipped.norm(dim=1), torch.ones(256), atol=1e-5)


def test_dp_layer_keeps_short_vectors():
    layer = DPLayer(clip_norm=2.0, sigma=0.0).train()
    features = torch.randn(64, FEATURE_DIM)
    features = features / features.norm(dim=1, keepdim=True)  # norm 1 < C = 2
    assert torch.allclose(layer(features), features)


def test_dp_layer_noise_has_sigma_scale():
    torch.manual_seed(0)
    layer = DPLayer(clip_norm=1.0, sigma=1.5).train()
    features = torch.zeros(4000, FEATURE_DIM)
    noise = layer(features)
    assert abs(noise.std().item() - 1.5) < 0.02
    assert abs(noise.mean().item()) < 0.02


def test_dp_layer_draws_fresh_noise_each_pass():
    layer = DPLayer(clip_norm=1.0, sigma=1.0).train()
    features = torch.zeros(8, FEATURE_DIM)
    assert not torch.equal(layer(features), layer(features))


def test_dp_layer_eval_mode_only_clips():
    layer = DPLayer(clip_norm=1.0, sigma=1.5).eval()
    features = torch.randn(16, FEATURE_DIM) * 5
    assert torch.allclose(layer(features).norm(dim=1), torch.ones(16), atol=1e-5)


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (3, 48)])
def test_generator_output_shape_and_range(channels, size):
    generator = Generator(num_classes=10, channels=channels, image_size=size, width=8)
    images = generator(torch.randn(5, NOISE_DIM), torch.arange(5))
    assert images.shape == (5, channels, size, size)
    assert images.min() >= -1
    assert images.max() <= 1


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (3, 48)])
def test_critic_scores_one_value_per_image(conditioning, channels, size):
    critic = Critic(10, channels, size, width=8, clip_norm=1.0, sigma=1.5, conditioning=conditioning)
    scores = critic(torch.randn(6, channels, size, size), torch.arange(6))
    assert scores.shape == (6,)


def test_projection_critic_depends_on_label():
    torch.manual_seed(0)
    critic = Critic(10, 1, 28, width=8, clip_norm=1.0, sigma=0.0, conditioning="projection").eval()
    images = torch.randn(1, 1, 28, 28).repeat(2, 1, 1, 1)
    scores = critic(images, torch.tensor([0, 1]))
    assert scores[0] != scores[1]


def test_critic_rejects_unknown_conditioning():
    with pytest.raises(ValueError, match="conditioning"):
        Critic(10, 1, 28, width=8, clip_norm=1.0, sigma=0.0, conditioning="film")


def test_selu_matches_torch_selu():
    inputs = torch.linspace(-8, 8, 10001)
    assert torch.allclose(selu(inputs), torch.selu(inputs), atol=5e-7)


def test_selu_first_and_second_derivatives():
    inputs = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(selu, (inputs,))
    assert torch.autograd.gradgradcheck(selu, (inputs,))
