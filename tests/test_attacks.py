import math

import numpy as np
import pytest
import torch
from torch import nn

from privgen.attacks import (
    InversionConfig,
    evaluator_scores,
    feature_distances,
    invert_all_classes,
    invert_and_measure,
    invert_class,
    reconstruction_distances,
    train_evaluator,
)
from privgen.data import ImageSet
from privgen.errors import PrivgenError
from privgen.features import FeatureSpace
from privgen.students import evaluate


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
    assert image.min() >= -1
    assert image.max() <= 1


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


def test_feature_distances_match_hand_computation():
    real_features = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0], [10.0, 2.0]])
    real_labels = np.array([0, 0, 1, 1])
    reconstruction_features = np.array([[3.0, 0.0], [10.0, 1.0]])
    rows = feature_distances(reconstruction_features, real_features, real_labels)
    # Class 0: nearest is (0, 0) at 3, or (3, 4) at 4; the class mean is (1.5, 2), at 2.5.
    assert rows[0]["nearest_feature_distance"] == pytest.approx(3.0)
    assert rows[0]["class_mean_feature_distance"] == pytest.approx(2.5)
    # Class 1: both points at 1; the class mean (10, 1) is the reconstruction itself.
    assert rows[1]["nearest_feature_distance"] == pytest.approx(1.0)
    assert rows[1]["class_mean_feature_distance"] == pytest.approx(0.0)


def test_evaluator_scores_recognition_and_probability():
    templates = torch.zeros(2, 1, 2, 2)
    templates[0, 0, 0, :] = 1.0
    templates[1, 0, 1, :] = 1.0
    evaluator = TemplateModel(templates)
    # Reconstruction 0 is bright in row 0 (recognised), reconstruction 1 also in row 0 (not recognised).
    images = np.array([[[[255, 255], [0, 0]]], [[[255, 255], [0, 0]]]], dtype=np.uint8)
    rows = evaluator_scores(evaluator, ImageSet(images, np.array([0, 1]), ["a", "b"]), torch.device("cpu"))
    assert [row["recognised"] for row in rows] == [True, False]
    # Logits 5 * (2, -2): p(class 0) = 1 / (1 + e^-20).
    assert rows[0]["evaluator_probability"] == pytest.approx(1 / (1 + math.exp(-20)))
    assert rows[1]["evaluator_probability"] == pytest.approx(1 - 1 / (1 + math.exp(-20)))


def test_invert_and_measure_reports_every_class():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 1, 4, 4), dtype=np.uint8)
    real_train = ImageSet(images, np.arange(12, dtype=np.int64) % 3, ["a", "b", "c"])
    model = TemplateModel(torch.randn(3, 1, 4, 4))
    space = FeatureSpace("pixels", None, torch.device("cpu"))
    reconstructions, report = invert_and_measure(
        model, real_train, space, space.transform(real_train), model, InversionConfig(max_steps=50, learning_rate=0.5), torch.device("cpu")
    )
    assert reconstructions.shape == (3, 1, 4, 4)
    assert reconstructions.dtype == np.uint8
    assert list(report["per_class"]) == ["a", "b", "c"]
    # The attacked model is its own evaluator here, so every reconstruction is recognised.
    assert report["recognition_rate"] == 1.0
    per_class = report["per_class"].values()
    assert report["mean_nearest_rmse"] == pytest.approx(np.mean([row["nearest_rmse"] for row in per_class]))
    # In pixel space scaled to [-1, 1], a distance is 2 * sqrt(pixels) times the RMSE on [0, 1] (up to uint8 rounding).
    for row in per_class:
        assert row["nearest_feature_distance"] == pytest.approx(2 * 4 * row["nearest_rmse"], abs=0.05)
        assert row["class_mean_feature_distance"] == pytest.approx(2 * 4 * row["class_mean_rmse"], abs=0.05)


def test_invert_and_measure_rejects_feature_count_mismatch():
    images = np.zeros((4, 1, 2, 2), dtype=np.uint8)
    real_train = ImageSet(images, np.array([0, 1, 0, 1]), ["a", "b"])
    space = FeatureSpace("pixels", None, torch.device("cpu"))
    model = TemplateModel(torch.randn(2, 1, 2, 2))
    with pytest.raises(PrivgenError, match="3 real feature vectors for 4 real training images"):
        invert_and_measure(model, real_train, space, np.zeros((3, 4)), model, InversionConfig(max_steps=2), torch.device("cpu"))


def test_evaluator_learns_simple_classes():
    rng = np.random.default_rng(0)
    labels = np.arange(200, dtype=np.int64) % 2
    images = rng.integers(0, 40, size=(200, 1, 8, 8))
    images[labels == 1, :, :, :4] += 200  # class 1 is bright on the left
    real_test = ImageSet(images.astype(np.uint8), labels, ["dark", "left"])
    evaluator = train_evaluator(real_test, epochs=3, seed=0, device=torch.device("cpu"))
    fresh = rng.integers(0, 40, size=(20, 1, 8, 8))
    fresh[10:, :, :, :4] += 200
    fresh_set = ImageSet(fresh.astype(np.uint8), np.repeat(np.arange(2), 10), ["dark", "left"])
    assert evaluate(evaluator, fresh_set, torch.device("cpu"))["accuracy"] >= 0.9
