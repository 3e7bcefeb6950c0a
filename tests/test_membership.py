import numpy as np
import pytest
import torch

from privgen.data import ImageSet
from privgen.datasets import load_mnist5k
from privgen.errors import PrivgenError
from privgen.membership import bootstrap_auc_interval, loss_threshold_attack, per_example_losses, release_membership, roc_auc
from privgen.students import MLPStudent, TrainingConfig, build_student, train_student


@pytest.fixture(scope="module")
def mnist_parts() -> dict[str, ImageSet]:
    """Disjoint random parts of the 5,000 real MNIST digits."""
    digits = load_mnist5k()
    order = np.random.default_rng(0).permutation(len(digits))
    bounds = {"members": (0, 500), "non_members": (500, 1000), "independent": (1000, 2000), "large_train": (2000, 4000)}
    return {name: digits.subset(np.sort(order[start:stop])) for name, (start, stop) in bounds.items()}


def random_subset(image_set: ImageSet, count: int) -> ImageSet:
    """Pick `count` images at random: the digits are stored class by class, so the first ones are all zeros."""
    return image_set.subset(np.sort(np.random.default_rng(1).choice(len(image_set), count, replace=False)))


def test_roc_auc_matches_hand_count():
    # Pairs (member, non-member): 3>2, 3>0, 1<2, 1>0, 2=2 (half), 2>0 -> 4.5 of 6.
    assert roc_auc(np.array([3.0, 1.0, 2.0]), np.array([2.0, 0.0])) == pytest.approx(0.75)


def test_roc_auc_extremes_and_ties():
    assert roc_auc(np.array([5.0, 6.0]), np.array([1.0, 2.0, 3.0])) == 1.0
    assert roc_auc(np.array([1.0, 2.0]), np.array([5.0, 6.0])) == 0.0
    assert roc_auc(np.full(4, 7.0), np.full(3, 7.0)) == 0.5


def test_roc_auc_rejects_empty_group():
    with pytest.raises(PrivgenError, match="members and non-members"):
        roc_auc(np.array([]), np.array([1.0]))


def test_bootstrap_interval_is_seeded_and_brackets_auc():
    rng = np.random.default_rng(1)
    members, non_members = rng.normal(0.5, 1, 300), rng.normal(0, 1, 300)
    low, high = bootstrap_auc_interval(members, non_members, 200, seed=3)
    assert (low, high) == bootstrap_auc_interval(members, non_members, 200, seed=3)
    assert low < roc_auc(members, non_members) < high
    assert 0.05 < high - low < 0.2
    with pytest.raises(PrivgenError, match="attack.bootstrap_resamples is 0"):
        bootstrap_auc_interval(members, non_members, 0, seed=3)


def test_release_of_copies_is_detected(mnist_parts):
    members, non_members = mnist_parts["members"], mnist_parts["non_members"]
    exact = release_membership(members, non_members, members, resamples=100, seed=0)
    assert exact.auc == 1.0
    assert np.all(exact.member_scores == 0)

    rng = np.random.default_rng(2)
    noise = rng.normal(0, 20, members.images.shape)
    noisy_copies = ImageSet(np.clip(members.images + noise, 0, 255).astype(np.uint8), members.labels, members.class_names)
    noisy = release_membership(members, non_members, noisy_copies, resamples=100, seed=0)
    assert noisy.auc > 0.9
    assert noisy.auc_low > 0.85


def test_independent_release_gives_chance_auc(mnist_parts):
    result = release_membership(mnist_parts["members"], mnist_parts["non_members"], mnist_parts["independent"], resamples=200, seed=0)
    assert abs(result.auc - 0.5) < 0.05
    assert result.auc_low < 0.5 < result.auc_high


def test_release_rejects_other_image_shape(mnist_parts):
    members = mnist_parts["members"]
    small = ImageSet(members.images[:, :, :14, :14].copy(), members.labels, members.class_names)
    with pytest.raises(PrivgenError, match="shape"):
        release_membership(members, mnist_parts["non_members"], small, resamples=10, seed=0)


def test_per_example_losses_match_cross_entropy(mnist_parts):
    torch.manual_seed(0)
    model = build_student("logistic", (1, 28, 28), 10)
    part = mnist_parts["members"].subset(np.arange(7))
    losses = per_example_losses(model, part, batch_size=3)
    logits = model(torch.from_numpy(part.images).float() / 127.5 - 1)
    expected = torch.nn.functional.cross_entropy(logits, torch.from_numpy(part.labels), reduction="none")
    np.testing.assert_allclose(losses, expected.detach().numpy(), rtol=1e-5)


def test_loss_attack_detects_overfit_model(mnist_parts):
    members = random_subset(mnist_parts["members"], 40)
    non_members = random_subset(mnist_parts["non_members"], 40)
    torch.manual_seed(0)
    model = MLPStudent(784, 10, hidden=(100,))
    images = torch.from_numpy(members.images).float() / 127.5 - 1
    labels = torch.from_numpy(members.labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    result, advantage = loss_threshold_attack(model, members, non_members, resamples=200, seed=0)
    assert result.auc > 0.9
    assert result.auc_low > 0.8
    assert advantage > 0.3


def test_loss_attack_near_chance_for_general_model(mnist_parts):
    torch.manual_seed(0)
    train_set = mnist_parts["large_train"]
    model = build_student("logistic", train_set.image_shape, 10)
    config = TrainingConfig(epochs=3, patience=3, seed=0)
    train_student(model, train_set, mnist_parts["independent"], config, torch.device("cpu"))
    members = random_subset(train_set, 500)
    result, advantage = loss_threshold_attack(model, members, mnist_parts["non_members"], resamples=200, seed=0)
    assert abs(result.auc - 0.5) < 0.06
    assert abs(advantage) < 0.1
