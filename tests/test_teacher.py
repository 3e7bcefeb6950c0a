import dataclasses
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from privgen import teacher
from privgen.data import ImageSet
from privgen.errors import PrivgenError
from privgen.sampling import balanced_labels, load_generator, sample
from privgen.teacher import TRAINING_MODULES, TeacherConfig, TeacherTrainer, code_fingerprint

CPU = torch.device("cpu")


def tiny_set(count=64, size=28):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, 1, size, size), dtype=np.uint8)
    return ImageSet(images, np.arange(count, dtype=np.int64) % 4, ["a", "b", "c", "d"])


def tiny_config(**changes):
    base = TeacherConfig(iterations=4, width=4, batch_size=8, critic_iterations=2, log_interval=2, checkpoint_interval=2, seed=3)
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("sigma", -0.5, "gan.sigma is -0.5"),
        ("clip_norm", 0.0, "gan.clip_norm is 0.0"),
        ("iterations", 0, "gan.iterations is 0"),
        ("batch_size", 0, "gan.batch_size is 0"),
        ("learning_rate", 0.0, "gan.learning_rate is 0.0"),
        ("conditioning", "film", "gan.conditioning is 'film'"),
    ],
)
def test_config_rejects_out_of_range(field, value, message):
    with pytest.raises(PrivgenError, match=message):
        tiny_config(**{field: value}).validate()


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_training_records_finite_losses(conditioning):
    trainer = TeacherTrainer(tiny_config(conditioning=conditioning), tiny_set(), CPU)
    trainer.train(progress=False)
    history = trainer.history_frame()
    assert list(history["iteration"]) == [2, 4]
    assert np.isfinite(history.drop(columns="iteration").to_numpy()).all()


def test_training_changes_both_networks():
    trainer = TeacherTrainer(tiny_config(), tiny_set(), CPU)
    generator_before = [parameter.clone() for parameter in trainer.generator.parameters()]
    critic_before = [parameter.clone() for parameter in trainer.critic.parameters()]
    trainer.train(progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(generator_before, trainer.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, trainer.critic.parameters()))


def test_same_seed_gives_same_weights():
    first = TeacherTrainer(tiny_config(), tiny_set(), CPU)
    first.train(progress=False)
    second = TeacherTrainer(tiny_config(), tiny_set(), CPU)
    second.train(progress=False)
    for a, b in zip(first.generator.state_dict().values(), second.generator.state_dict().values()):
        assert torch.equal(a, b)


def test_resumed_run_matches_uninterrupted_run(tmp_path, monkeypatch):
    uninterrupted = TeacherTrainer(tiny_config(iterations=6), tiny_set(), CPU)
    uninterrupted.train(progress=False)

    # Interrupt a second run with SIGINT during its third step: it saves a checkpoint and stops.
    partial = TeacherTrainer(tiny_config(iterations=6), tiny_set(), CPU)
    original_step = partial.train_step

    def step_then_interrupt():
        losses = original_step()
        if partial.iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return losses

    monkeypatch.setattr(partial, "train_step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        partial.train(checkpoint_path=tmp_path / "run.pt", progress=False)

    resumed = TeacherTrainer(tiny_config(iterations=6), tiny_set(), CPU)
    resumed.load(tmp_path / "run.pt")
    assert resumed.iteration == 3
    resumed.train(progress=False)
    for name, value in uninterrupted.state_dict()["generator"].items():
        assert torch.equal(value, resumed.generator.state_dict()[name]), name
    for name, value in uninterrupted.state_dict()["critic"].items():
        assert torch.equal(value, resumed.critic.state_dict()[name]), name


def test_checkpoint_of_other_run_is_rejected(tmp_path):
    trainer = TeacherTrainer(tiny_config(conditioning="concat"), tiny_set(), CPU)
    trainer.save(tmp_path / "run.pt")
    other = TeacherTrainer(tiny_config(conditioning="projection"), tiny_set(), CPU)
    with pytest.raises(PrivgenError, match="other params, data or training code.*conditioning 'concat'"):
        other.load(tmp_path / "run.pt")


def test_checkpoint_of_other_code_is_rejected(tmp_path, monkeypatch):
    trainer = TeacherTrainer(tiny_config(), tiny_set(), CPU)
    trainer.save(tmp_path / "run.pt")
    monkeypatch.setattr(teacher, "code_fingerprint", lambda: "0" * 16)
    other = TeacherTrainer(tiny_config(), tiny_set(), CPU)
    with pytest.raises(PrivgenError, match="other params, data or training code"):
        other.load(tmp_path / "run.pt")


def test_code_fingerprint_covers_training_modules(tmp_path):
    package = Path(teacher.__file__).parent
    copy = tmp_path / "privgen"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    original = code_fingerprint(copy)
    assert original == code_fingerprint(package)

    # A module that does not shape the weights leaves the fingerprint alone.
    with open(copy / "plots.py", "a") as source:
        source.write("# an edit\n")
    assert code_fingerprint(copy) == original

    for module in TRAINING_MODULES:
        before = code_fingerprint(copy)
        with open(copy / module, "a") as source:
            source.write("# an edit\n")
        assert code_fingerprint(copy) != before, module


def test_diverged_loss_stops_and_keeps_checkpoint(tmp_path, monkeypatch):
    trainer = TeacherTrainer(tiny_config(iterations=6), tiny_set(), CPU)
    checkpoint = tmp_path / "run.pt"
    original_step = trainer.train_step

    def step_with_nan():
        losses = original_step()
        if trainer.iteration == 2:  # the third step reports a NaN critic loss
            losses["critic_loss"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(trainer, "train_step", step_with_nan)
    with pytest.raises(PrivgenError, match="diverged at iteration 3"):
        trainer.train(checkpoint_path=checkpoint, progress=False)
    assert torch.load(checkpoint, weights_only=False)["iteration"] == 2


def test_generator_reloads_and_samples_labelled_images(tmp_path):
    trainer = TeacherTrainer(tiny_config(), tiny_set(), CPU)
    trainer.train(progress=False)
    trainer.save(tmp_path / "teacher.pt")
    generator, state = load_generator(tmp_path / "teacher.pt", CPU)
    labels = balanced_labels(10, 4)
    images = sample(generator, labels, seed=0, device=CPU, batch_size=3)
    assert images.shape == (10, 1, 28, 28)
    assert images.dtype == np.uint8
    assert np.array_equal(images, sample(generator, labels, seed=0, device=CPU))
    assert state["class_names"] == ["a", "b", "c", "d"]


def test_balanced_labels_cover_classes_evenly():
    counts = np.bincount(balanced_labels(4000, 10))
    assert set(counts) == {400}


def test_missing_checkpoint_is_reported(tmp_path):
    with pytest.raises(PrivgenError, match="missing; run the train_teacher stage"):
        load_generator(tmp_path / "absent.pt", CPU)


def test_corrupt_checkpoint_is_reported(tmp_path):
    (tmp_path / "teacher.pt").write_bytes(b"garbage")
    with pytest.raises(PrivgenError, match="unreadable"):
        load_generator(tmp_path / "teacher.pt", CPU)
