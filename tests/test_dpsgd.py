from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from privgen.data import ImageSet
from privgen.dpsgd import DPSGDConfig, planned_epsilon, train_dp_student
from privgen.errors import PrivgenError
from privgen.students import evaluate

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


def params_config() -> DPSGDConfig:
    """The DP-SGD settings that params.yaml passes to the attack stage."""
    attack = yaml.safe_load((ROOT / "params.yaml").read_text())["attack"]
    return DPSGDConfig(
        noise_multiplier=attack["dp_noise_multiplier"],
        max_grad_norm=attack["dp_max_grad_norm"],
        epochs=attack["dp_epochs"],
        batch_size=attack["dp_batch_size"],
        learning_rate=attack["dp_learning_rate"],
        delta=attack["dp_delta"],
        accountant=attack["dp_accountant"],
    )


def stripes(count: int, seed: int = 0) -> ImageSet:
    """Two easy classes of 8x8 images: bright top half (class 0) or bright bottom half (class 1), plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    images = rng.integers(0, 60, size=(count, 1, 8, 8))
    for index, label in enumerate(labels):
        rows = slice(0, 4) if label == 0 else slice(4, 8)
        images[index, 0, rows] += 180
    return ImageSet(images.astype(np.uint8), labels.astype(np.int64), ["top", "bottom"])


def test_default_settings_give_epsilon_at_most_one():
    # The default data: 4,000 real training images (mnist5k less its 20 % test split).
    config = params_config()
    assert config.delta == 1e-5
    epsilon = planned_epsilon(config, 4000)
    assert 0 < epsilon <= 1.0


def test_epsilon_grows_with_epochs_and_falls_with_noise():
    base = DPSGDConfig(epochs=2, batch_size=50, noise_multiplier=2.0)
    more_epochs = DPSGDConfig(epochs=4, batch_size=50, noise_multiplier=2.0)
    more_noise = DPSGDConfig(epochs=2, batch_size=50, noise_multiplier=4.0)
    assert planned_epsilon(more_epochs, 1000) > planned_epsilon(base, 1000)
    assert planned_epsilon(more_noise, 1000) < planned_epsilon(base, 1000)


def test_training_reports_planned_epsilon_and_learns():
    train_set, test_set = stripes(400), stripes(200, seed=1)
    config = DPSGDConfig(noise_multiplier=1.0, epochs=3, batch_size=40, learning_rate=0.01)
    result = train_dp_student("logistic", train_set, config, CPU, seed=0)
    assert result.steps == 3 * 10
    assert result.sample_rate == pytest.approx(0.1)
    assert result.epsilon == pytest.approx(planned_epsilon(config, 400))
    assert evaluate(result.model, test_set, CPU)["accuracy"] > 0.9


def test_training_repeats_for_a_seed():
    train_set = stripes(60)
    config = DPSGDConfig(noise_multiplier=1.0, epochs=2, batch_size=20)
    first = train_dp_student("logistic", train_set, config, CPU, seed=5).model.state_dict()
    second = train_dp_student("logistic", train_set, config, CPU, seed=5).model.state_dict()
    other = train_dp_student("logistic", train_set, config, CPU, seed=6).model.state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_empty_batches_still_count_and_stay_finite():
    # Three examples sampled with probability 1/3 each: about 30 % of the batches are empty.
    config = DPSGDConfig(noise_multiplier=1.0, epochs=10, batch_size=1)
    result = train_dp_student("logistic", stripes(3), config, CPU, seed=0)
    assert result.steps == 30
    assert result.epsilon == pytest.approx(planned_epsilon(config, 3))
    assert all(torch.isfinite(value).all() for value in result.model.state_dict().values())


def test_trained_model_has_no_opacus_hooks():
    result = train_dp_student("logistic", stripes(20), DPSGDConfig(epochs=1, batch_size=10), CPU, seed=0)
    image = torch.zeros(1, 1, 8, 8, requires_grad=True)
    (gradient,) = torch.autograd.grad(result.model(image)[0, 0], image)
    assert gradient.shape == image.shape
    assert not any(module._forward_hooks or module._backward_hooks for module in result.model.modules())


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"noise_multiplier": 0.0}, "attack.dp_noise_multiplier is 0.0"),
        ({"max_grad_norm": -1.0}, "attack.dp_max_grad_norm is -1.0"),
        ({"epochs": 0}, "attack.dp_epochs is 0"),
        ({"batch_size": 0}, "attack.dp_batch_size is 0"),
        ({"delta": 1.0}, "attack.dp_delta is 1.0"),
        ({"accountant": "moments"}, "attack.dp_accountant is 'moments'"),
    ],
)
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(PrivgenError, match=message):
        DPSGDConfig(**changes).validate()
