"""Classifiers: train on a dataset's labels with a timm backbone, save as safetensors + JSON, load, refuse the rest."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from gantoolkit.classifiers import (
    DEFAULT_BACKBONE,
    _normalisation,
    load_classifier,
    save_classifier,
    train_classifier,
)
from gantoolkit.data import IMAGE, DataInfo, DataRequest, Dataset, to_model_space
from gantoolkit.errors import CheckpointError, ConfigError, DataError, GanToolkitError


def digits(size: int = 8) -> Dataset:
    from gantoolkit.builtin.datasets.digits import Digits

    return Digits().load(DataRequest(image_size=size))


def one_thread(fn, *args, **kwargs):
    """Tiny convolutions run fastest on one thread; on a shared 2-core machine two threads can be 5x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained():
    """A digits classifier at 8x8, trained for a few epochs (a few seconds)."""
    return one_thread(train_classifier, digits(8), epochs=4, seed=0)


def test_learns_digits_and_reports_held_out_accuracy(trained):
    clf, acc = trained
    assert acc > 0.9
    assert clf.info.held_out_accuracy == acc and clf.info.held_out_size == 359 and clf.info.train_size == 1438
    assert clf.info.backbone == DEFAULT_BACKBONE and clf.info.input_shape == [1, 8, 8]
    assert clf.info.stem_stride1 and clf.info.drop_maxpool  # adapted to tiny images
    assert not clf.training and not any(p.requires_grad for p in clf.parameters())


def test_logits_features_and_gradients_reach_the_input(trained):
    clf, _ = trained
    x = to_model_space(digits(8).data[:5], digits(8).info).requires_grad_(True)
    logits, features = clf.logits(x), clf.features(x)
    assert logits.shape == (5, 10) and features.shape == (5, clf.feature_dim)
    logits[:, 3].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # other sizes are resized to the classifier's input: a 16x16 digit reads as the same digit
    big = to_model_space(digits(16).data[:200], digits(16).info)
    labels = digits(16).labels[:200]
    assert (clf.predict(big) == labels).float().mean() > 0.8
    with pytest.raises(ConfigError, match="1-channel"):
        clf.logits(torch.zeros(2, 3, 8, 8))


def test_save_load_round_trip_is_exact(trained, tmp_path):
    clf, acc = trained
    path = tmp_path / "clf.safetensors"
    save_classifier(path, clf)
    loaded = load_classifier(path)
    x = to_model_space(digits(8).data[:64], digits(8).info)
    assert torch.equal(loaded.logits(x), clf.logits(x))
    assert loaded.class_names == [str(i) for i in range(10)] and loaded.info.held_out_accuracy == acc
    assert loaded.class_index("7") == 7 and loaded.class_index(3) == 3
    with pytest.raises(ConfigError, match="no class"):
        loaded.class_index("seven")
    with pytest.raises(ConfigError, match="out of range"):
        loaded.class_index(10)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    info = json.loads(meta["classifier"])
    assert meta["format"] == "gantoolkit-classifier"
    assert info["mean"] == [0.5] and info["std"] == [0.5] and info["data"]["source"] == "digits"
    assert set(load_file(str(path))) == set(clf.net.state_dict())


class Boom:
    marker = None

    def __reduce__(self):
        return (open, (str(Boom.marker), "w"))


def test_refuses_pickles_checkpoints_and_damaged_files(trained, tmp_path, tiny_run):
    Boom.marker = tmp_path / "executed"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_classifier(evil)
    assert not Boom.marker.exists()
    checkpoint = next((tiny_run / "checkpoints").iterdir())
    with pytest.raises(CheckpointError, match="'gantoolkit' file, not a classifier"):
        load_classifier(checkpoint)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="without gantoolkit metadata"):
        load_classifier(plain)
    good = tmp_path / "good.safetensors"
    save_classifier(good, trained[0])
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError):
        load_classifier(truncated)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_classifier(tmp_path / "missing.safetensors")


def test_bad_requests_are_one_line_errors(tmp_path):
    data = digits(8)
    with pytest.raises(ConfigError, match="did you mean"):
        train_classifier(data, backbone="resnet1O")
    vectors = Dataset(DataInfo("toy", "vector", (2,), 2, ("a", "b")), torch.zeros(20, 2), torch.zeros(20).long())
    with pytest.raises(DataError, match="vectors"):
        train_classifier(vectors)
    unlabelled = Dataset(DataInfo("x", IMAGE, (1, 8, 8)), torch.zeros(20, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(DataError, match="no labels"):
        train_classifier(unlabelled)
    with pytest.raises(ConfigError, match="pretrained-file"):
        train_classifier(data, pretrained_file=tmp_path / "weights.pth")
    with pytest.raises(GanToolkitError, match="held-out"):
        train_classifier(data, held_out=1.5)


def test_pretrained_weights_come_from_a_local_file_only(tmp_path):
    """timm loads the weights from the given file (here: a file we wrote); nothing is downloaded."""
    import timm

    source = timm.create_model(DEFAULT_BACKBONE, pretrained=False)
    weights = {k: v.clone() for k, v in source.state_dict().items()}
    save_file(weights, str(tmp_path / "model.safetensors"))
    clf, _ = one_thread(train_classifier, digits(8), epochs=1, pretrained_file=tmp_path / "model.safetensors",
                        lr=1e-9)
    stem = clf.net.conv1[1].weight  # the second stem conv is untouched by the 1-channel adaptation
    assert torch.allclose(stem, weights["conv1.1.weight"], atol=1e-6)
    assert clf.info.training["pretrained"]
    # with pretrained weights the inputs are normalised as those weights expect (ImageNet's, averaged for 1 channel)
    mean, std = _normalisation("resnet18", 1, pretrained=True)
    assert mean == [pytest.approx((0.485 + 0.456 + 0.406) / 3)] and std == [pytest.approx((0.229 + 0.224 + 0.225) / 3)]
