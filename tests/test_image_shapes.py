"""The teacher and the students on colour images of SVHN's (3 x 32 x 32) and of CelebA's (3 x 48 x 48) shape."""

import numpy as np
import pytest
import torch

from privgen.data import ImageSet
from privgen.students import STUDENTS, TrainingConfig, build_student, evaluate, train_student
from privgen.sampling import sample
from privgen.teacher import TeacherConfig, TeacherTrainer

CPU = torch.device("cpu")
SHAPES = [(3, 32, 32), (3, 48, 48)]


def colour_set(count: int, shape: tuple[int, int, int], seed: int) -> ImageSet:
    """Two classes in noise: a bright red channel (class 0) or a bright blue one (class 1)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 80, size=(count, *shape)).astype(np.uint8)
    labels = np.arange(count, dtype=np.int64) % 2
    images[labels == 0, 0] += 170
    images[labels == 1, 2] += 170
    return ImageSet(images, labels, ["red", "blue"])


@pytest.mark.parametrize("shape", SHAPES)
def test_teacher_step_on_colour_images(shape):
    config = TeacherConfig(iterations=1, critic_iterations=1, width=4, batch_size=8, log_interval=1, checkpoint_interval=1, seed=0)
    trainer = TeacherTrainer(config, colour_set(16, shape, seed=0), CPU)
    losses = trainer.train_step()
    assert all(torch.isfinite(value) for value in losses.values())
    images = sample(trainer.generator, np.array([0, 1, 1]), seed=0, device=CPU)
    assert images.shape == (3, *shape)
    assert images.dtype == np.uint8


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", STUDENTS)
def test_student_epoch_on_colour_images(name, shape):
    config = TrainingConfig(epochs=1, batch_size=16, seed=0)
    model = build_student(name, shape, 2)
    result = train_student(model, colour_set(64, shape, seed=1), colour_set(16, shape, seed=2), config, CPU)
    assert result.best_epoch == 1
    assert np.isfinite(result.validation_losses[0])
    # Red against blue is learnt within one epoch by every student.
    assert evaluate(result.model, colour_set(40, shape, seed=3), CPU)["accuracy"] > 0.9
