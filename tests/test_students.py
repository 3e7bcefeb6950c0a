import numpy as np
import pytest
import torch

from privgen.checkpoints import load_student, save_student
from privgen.data import ImageSet
from privgen.errors import PrivgenError
from privgen.students import STUDENTS, TrainingConfig, build_student, evaluate, loss_correlation, train_student

CPU = torch.device("cpu")


def bars(count, seed):
    """Two classes of 12x12 images: a bright horizontal bar (class 0) or a vertical one (class 1), in noise."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(count, 1, 12, 12)).astype(np.uint8)
    labels = np.arange(count, dtype=np.int64) % 2
    positions = rng.integers(2, 10, size=count)
    for index, (label, position) in enumerate(zip(labels, positions)):
        if label == 0:
            images[index, 0, position, :] = 255
        else:
            images[index, 0, :, position] = 255
    return ImageSet(images, labels, ["horizontal", "vertical"])


@pytest.mark.parametrize("name", STUDENTS)
def test_student_learns_bars(name):
    train, validation, test = bars(200, 0), bars(60, 1), bars(100, 2)
    model = build_student(name, (1, 12, 12), 2)
    result = train_student(model, train, validation, TrainingConfig(epochs=8, batch_size=20, patience=8, seed=0), CPU)
    assert evaluate(result.model, test, CPU)["accuracy"] > 0.8  # chance is 0.5


def test_training_keeps_best_validation_epoch():
    train, validation = bars(200, 0), bars(60, 1)
    model = build_student("mlp", (1, 12, 12), 2)
    result = train_student(model, train, validation, TrainingConfig(epochs=6, batch_size=20, patience=6, seed=0), CPU)
    best = int(np.argmin(result.validation_losses)) + 1
    assert result.best_epoch == best
    assert evaluate(result.model, validation, CPU)["loss"] == pytest.approx(min(result.validation_losses), rel=1e-5)


def test_early_stopping_after_patience():
    train = bars(100, 0)
    # Validation labels flipped: the validation loss rises as the model learns, so training stops early.
    flipped = bars(60, 1)
    flipped = ImageSet(flipped.images, 1 - flipped.labels, flipped.class_names)
    model = build_student("logistic", (1, 12, 12), 2)
    result = train_student(model, train, flipped, TrainingConfig(epochs=20, batch_size=20, patience=2, seed=0), CPU)
    assert len(result.validation_losses) < 20
    assert len(result.validation_losses) - result.best_epoch == 2


def test_unknown_student_is_rejected():
    with pytest.raises(PrivgenError, match="unknown student 'svm'"):
        build_student("svm", (1, 28, 28), 10)


def test_mlp_has_paper_layer_sizes():
    model = build_student("mlp", (1, 28, 28), 10)
    shapes = [tuple(parameter.shape) for name, parameter in model.named_parameters() if name.endswith("weight")]
    assert shapes == [(1000, 784), (300, 1000), (10, 300)]


def test_student_round_trip(tmp_path):
    model = build_student("cnn", (1, 12, 12), 2)
    save_student(tmp_path / "cnn.pt", "cnn", model, (1, 12, 12), 2)
    loaded = load_student(tmp_path / "cnn.pt", CPU)
    images = torch.randn(3, 1, 12, 12)
    model.eval()
    assert torch.equal(model(images), loaded(images))


def test_loss_correlation_values():
    assert loss_correlation([3.0, 2.0, 1.0], [6.0, 4.0, 2.0]) == pytest.approx(1.0)
    assert loss_correlation([3.0, 2.0, 1.0], [1.0, 2.0, 3.0]) == pytest.approx(-1.0)
    assert loss_correlation([1.0, 2.0], [1.0, 2.0]) is None
