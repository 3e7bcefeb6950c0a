import numpy as np
import pytest
import torch
from torch import nn

from privgen.attacks import InversionConfig, invert_all_classes, invert_class, reconstruction_distances
from privgen.data import ImageSet
from privgen.errors import PrivgenError


class TemplateModel(nn.Module):
    """Score each class by the inner product with a fixed template image."""

    def __init__(self, templates: torch.Tensor):
        super().__init__()
        self.templates = templates.flatten(start_dim=1)

    def forward(self, images):
        return 5 * images.flatten(start_dim=1) @ self.templates.T


def test_inversion_moves_towards_class_template():
    templates = torch.zeros(2, 1, 4, 4)
    templates[0, 0, 0, :] = 1.0
    templates[1, 0, :, 0] = 1.0
    model = TemplateModel(templates)
    image, cost, steps = invert_class(model, 0, torch.zeros(1, 4, 4), InversionConfig(max_steps=200, learning_rate=0.5))
    assert cost < 0.01
    assert image[0, 0, :].mean() > image[0, 1:, 0].mean()
    assert image.min() >= -1 and image.max() <= 1


def test_inversion_stops_at_cost_threshold():
    model = TemplateModel(torch.eye(2).reshape(2, 1, 1, 2))
    _, cost, steps = invert_class(model, 1, torch.zeros(1, 1, 2), InversionConfig(max_steps=1000, learning_rate=1.0, cost_threshold=0.2))
    assert cost <= 0.2
    assert steps < 1000


def test_inversion_stops_without_improvement():
    # A constant model never improves the cost, so the window rule ends the search early.
    class Constant(nn.Module):
        def forward(self, images):
            return torch.zeros(len(images), 3) + 0 * images.sum()

    _, cost, steps = invert_class(Constant(), 0, torch.zeros(1, 2, 2), InversionConfig(max_steps=500, window=5))
    assert steps == 6
    assert cost == pytest.approx(2 / 3)


def test_invert_all_classes_shapes():
    model = TemplateModel(torch.randn(3, 1, 4, 4))
    images, details = invert_all_classes(model, 3, (1, 4, 4), InversionConfig(max_steps=5), "cpu")
    assert images.shape == (3, 1, 4, 4)
    assert len(details) == 3


def test_distances_zero_for_exact_training_image():
    images = np.array([[[[0, 255]]], [[[255, 0]]]], dtype=np.uint8)
    real = ImageSet(images, np.array([0, 1], dtype=np.int64), ["a", "b"])
    reconstructions = torch.tensor([[[[-1.0, 1.0]]], [[[-1.0, 1.0]]]])
    rows = reconstruction_distances(reconstructions, real)
    assert rows[0]["nearest_rmse"] == pytest.approx(0.0)
    assert rows[1]["nearest_rmse"] == pytest.approx(1.0)
    assert rows[0]["class_mean_rmse"] == pytest.approx(0.0)


def test_config_rejects_bad_values():
    with pytest.raises(PrivgenError, match="attack.learning_rate"):
        InversionConfig(learning_rate=0).validate()
    with pytest.raises(PrivgenError, match="attack.max_steps"):
        InversionConfig(max_steps=0).validate()
