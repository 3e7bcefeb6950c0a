import numpy as np
import pytest
import torch
from torchvision.models.inception import Inception3

from privgen.data import ImageSet
from privgen.errors import PrivgenError
from privgen.features import extract_features, load_feature_space, load_inception

CPU = torch.device("cpu")


def tiny_images(count=3, channels=1, size=28, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, channels, size, size), dtype=np.uint8)
    return ImageSet(images, np.arange(count, dtype=np.int64) % 2, ["a", "b"])


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """A weights file in torchvision's Inception V3 layout, from a randomly initialised network."""
    torch.manual_seed(0)
    network = Inception3(num_classes=1000, aux_logits=True, transform_input=True, init_weights=False)
    path = tmp_path_factory.mktemp("weights") / "inception_v3_google.pth"
    torch.save(network.state_dict(), path)
    return path, network


@pytest.mark.parametrize("channels", [1, 3])
def test_inception_features_are_2048_pool_features(inception_file, channels):
    path, network = inception_file
    model = load_inception(str(path), CPU)
    images = tiny_images(2, channels)
    real, artificial, description = extract_features("inception", images, images, CPU, inception_weights=str(path))
    assert real.shape == (2, 2048)
    assert real.dtype == np.float32
    assert np.array_equal(real, artificial)
    assert description["extractor"] == "inception"
    # The loaded weights are the file's: the pool features equal those of the network that wrote it.
    network.eval()
    network.fc = torch.nn.Identity()
    pixels = torch.from_numpy(images.images).float().div(255).expand(-1, 3, -1, -1)
    resized = torch.nn.functional.interpolate(pixels, size=(299, 299), mode="bilinear", align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = network((resized - mean) / std)
    assert np.allclose(real, expected.numpy(), atol=1e-4)
    assert model.fc.__class__ is torch.nn.Identity


def test_inception_without_weights_path_explains_download():
    with pytest.raises(PrivgenError, match="features.inception_weights is empty.*download.pytorch.org"):
        load_inception("", CPU)


def test_inception_missing_file(tmp_path):
    with pytest.raises(PrivgenError, match="is missing; download torchvision's ImageNet weights"):
        load_inception(str(tmp_path / "absent.pth"), CPU)


def test_inception_wrong_network_file(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(PrivgenError, match="does not match torchvision's Inception V3"):
        load_inception(str(path), CPU)


def test_inception_corrupt_file(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(PrivgenError, match="unreadable"):
        load_inception(str(path), CPU)


def test_pixel_features_scale_and_dimension():
    images = tiny_images(4)
    real, _, description = extract_features("pixels", images, images, CPU)
    assert real.shape == (4, 784)
    assert real.min() >= -1
    assert real.max() <= 1
    assert "state_dict" not in description


def test_classifier_features_dimension_and_weights():
    rng = np.random.default_rng(1)
    images = ImageSet(rng.integers(0, 256, (60, 1, 28, 28), dtype=np.uint8), np.arange(60, dtype=np.int64) % 3, ["a", "b", "c"])
    real, artificial, description = extract_features("classifier", images, images.subset(np.arange(10)), CPU, epochs=1)
    assert real.shape == (60, 128)
    assert artificial.shape == (10, 128)
    assert "state_dict" in description


def test_unknown_extractor():
    images = tiny_images()
    with pytest.raises(PrivgenError, match="unknown feature extractor 'vgg'"):
        extract_features("vgg", images, images, CPU)


def test_mismatched_image_shapes():
    with pytest.raises(PrivgenError, match="shape"):
        extract_features("pixels", tiny_images(size=28), tiny_images(size=32), CPU)


@pytest.mark.parametrize("extractor", ["classifier", "pixels"])
def test_feature_space_reproduces_saved_features(tmp_path, extractor):
    rng = np.random.default_rng(2)
    images = ImageSet(rng.integers(0, 256, (40, 1, 28, 28), dtype=np.uint8), np.arange(40, dtype=np.int64) % 2, ["a", "b"])
    real, _, description = extract_features(extractor, images, images.subset(np.arange(5)), CPU, epochs=1)
    path = tmp_path / "feature_extractor.pt"
    torch.save(description, path)
    space = load_feature_space(path, CPU)
    assert space.extractor == extractor
    assert np.allclose(space.transform(images), real, atol=1e-5)


def test_feature_space_of_inception_reads_weights_again(tmp_path, inception_file):
    weights, _ = inception_file
    images = tiny_images(1)
    real, _, description = extract_features("inception", images, images, CPU, inception_weights=str(weights))
    path = tmp_path / "feature_extractor.pt"
    torch.save(description, path)
    assert np.allclose(load_feature_space(path, CPU, str(weights)).transform(images), real, atol=1e-4)
    with pytest.raises(PrivgenError, match="features.inception_weights is empty"):
        load_feature_space(path, CPU, "")


def test_feature_space_missing_or_damaged_file(tmp_path):
    with pytest.raises(PrivgenError, match="is missing; run the extract_features stage"):
        load_feature_space(tmp_path / "absent.pt", CPU)
    damaged = tmp_path / "damaged.pt"
    torch.save({"extractor": "classifier"}, damaged)
    with pytest.raises(PrivgenError, match="is unreadable \\(KeyError\\); rerun extract_features"):
        load_feature_space(damaged, CPU)
