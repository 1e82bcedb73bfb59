"""Directions in z-space: SeFa, PCA, classifier gradients and InfoGAN codes; their files; `sample --direction`."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from gantoolkit.errors import CheckpointError, ConfigError
from tests.conftest import TINY_DCGAN

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Tiny 8x8 digit generators (unconditional, checkpoints at 20 and 40 steps; InfoGAN, 20 steps) and a classifier."""
    from gantoolkit.builtin.datasets.digits import Digits
    from gantoolkit.classifiers import save_classifier, train_classifier
    from gantoolkit.cli import build_app
    from gantoolkit.data import DataRequest
    from gantoolkit.registry import reset_registry

    root = tmp_path_factory.mktemp("directions")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reset_registry()
        common = ["train", *TINY_DCGAN, "--loss", "bce", "--image-size", "8", "--log-every", "20"]
        for extra in (["--steps", "40", "--checkpoint-every", "20", "--out", str(root / "gan")],
                      ["--steps", "20", "--controller", "infogan", "--controller-opt", "categorical=3",
                       "--out", str(root / "info")]):
            result = CliRunner().invoke(build_app(), [*common, *extra])
            assert result.exit_code == 0, result.output
        clf, _ = train_classifier(Digits().load(DataRequest(image_size=8)), epochs=2)
        save_classifier(root / "clf.safetensors", clf)
    finally:
        torch.set_num_threads(threads)
    return root


@pytest.fixture
def model(workdir):
    from gantoolkit.sampling.generator import load_generator

    return load_generator(workdir / "gan")


def find(name: str, model, **options):
    from gantoolkit.registry import get_registry

    return get_registry().create("finder", name, options).find(model)


def pixel_changes(model, directions, alpha: float = 3.0, n: int = 32) -> torch.Tensor:
    """Per direction: the flattened mean change of n samples moved from −alpha to +alpha."""
    z = model.latents(n, seed=11)
    out = []
    for d in directions.vectors:
        out.append((model.generate(z + alpha * d) - model.generate(z - alpha * d)).mean(0).flatten())
    return torch.stack(out)


def test_sefa_is_the_closed_form_of_the_first_layer(model):
    found = find("sefa", model, num=4)
    assert found.names == ["sefa0", "sefa1", "sefa2", "sefa3"] and found.vectors.shape == (4, 16)
    assert torch.allclose(found.vectors @ found.vectors.T, torch.eye(4), atol=1e-5)
    # independently: the first ConvTranspose2d's weight as a matrix on z, rows normalised, right singular vectors
    weight = model.generator.body.main[0].weight.detach()  # in_dim × channels × 4 × 4
    a = weight[:16].reshape(16, -1).T
    a = a / a.norm(dim=1, keepdim=True)
    _, s, vh = torch.linalg.svd(a, full_matrices=False)
    assert torch.allclose((found.vectors @ vh[:4].T).abs().diagonal(), torch.ones(4), atol=1e-4)
    assert found.extra["eigenvalues"] == pytest.approx((s[:4] ** 2).tolist(), rel=1e-4)


def test_pca_and_sefa_directions_make_visible_distinct_changes(model):
    for method in ("sefa", "pca"):
        found = find(method, model, num=3, **({"samples": 500} if method == "pca" else {}))
        assert torch.allclose(found.vectors.norm(dim=1), torch.ones(3), atol=1e-5)
        changes = pixel_changes(model, found)
        assert (changes.abs().mean(1) > 0.01).all(), method  # visible: mean |Δpixel| in [-1, 1] units
        unit = changes / changes.norm(dim=1, keepdim=True)
        cos = (unit @ unit.T - torch.eye(3)).abs().max()
        assert cos < 0.95, method  # distinct: no two directions make the same change
    pca = find("pca", model, num=3, samples=500)
    variance = pca.extra["explained_variance"]
    assert variance == sorted(variance, reverse=True) and pca.extra["layer"] == 1


def test_classifier_directions_raise_the_class_probability(model, workdir):
    from gantoolkit.classifiers import load_classifier

    found = find("classifier", model, classifier=str(workdir / "clf.safetensors"), targets="2,7", samples=64)
    assert found.names == ["2", "7"] and len(found.extra["mean_cosine"]) == 2
    clf = load_classifier(workdir / "clf.safetensors")
    z = model.latents(64, seed=123)
    with torch.no_grad():
        for name, d in zip(found.names, found.vectors, strict=True):
            k = int(name)
            before = clf.logits(model.generate(z)).log_softmax(1)[:, k].mean()
            after = clf.logits(model.generate(z + 0.5 * d)).log_softmax(1)[:, k].mean()
            assert after > before
    with pytest.raises(ConfigError, match="needs a classifier"):
        find("classifier", model)


def test_infogan_directions_are_its_codes(workdir):
    from gantoolkit.controllers.directions import moved_inputs
    from gantoolkit.sampling.generator import load_generator

    info = load_generator(workdir / "info")
    found = find("infogan", info)
    assert found.space == "codes" and found.names == ["c0", "c1"] and found.all_names == ["c0", "c1", "cat0"]
    assert torch.equal(found.vectors, torch.eye(5)[3:])
    z, codes = info.latents(2, 0), info.codes(2, 0)
    moved_z, moved_codes, cols = moved_inputs(found, "c1", z, codes, [-2.0, 0.0, 2.0])
    assert cols == 3 and torch.equal(moved_z, z.repeat_interleave(3, 0))
    assert moved_codes[:, 4].tolist() == pytest.approx([-2.0, 0.0, 2.0] * 2)  # the code is set to each alpha ...
    assert torch.equal(moved_codes[:, :4], codes.repeat_interleave(3, 0)[:, :4])  # ... and nothing else moves
    _, cat_codes, cols = moved_inputs(found, "cat0", z, codes, [])
    assert cols == 3 and cat_codes[:, :3].argmax(1).tolist() == [0, 1, 2, 0, 1, 2]
    with pytest.raises(ConfigError, match="not trained with InfoGAN"):
        find("infogan", load_generator(workdir / "gan"))


def test_directions_file_round_trip_and_refusals(model, workdir, tmp_path):
    from gantoolkit.controllers.directions import load_directions, save_directions
    from gantoolkit.files.runs import list_checkpoints
    from gantoolkit.sampling.generator import load_generator

    found = find("sefa", model, num=2)
    path = tmp_path / "dirs.safetensors"
    save_directions(path, found)
    loaded = load_directions(path, model)
    assert torch.equal(loaded.vectors, found.vectors) and loaded.names == found.names
    assert loaded.source["step"] == 40 and loaded.source["latent_dim"] == 16 and len(loaded.source["sha256"]) == 64
    earlier = load_generator(list_checkpoints(workdir / "gan")[0][1])
    with pytest.raises(CheckpointError, match=r"belong to .*step 40.*not to .*step 20"):
        load_directions(path, earlier)
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"directions": [1, 2]}))
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_directions(evil)
    with pytest.raises(CheckpointError, match="not a directions"):
        load_directions(workdir / "clf.safetensors")
    plain = tmp_path / "plain.safetensors"
    save_file({"directions": torch.zeros(2, 16)}, str(plain))
    with pytest.raises(CheckpointError, match="without gantoolkit metadata"):
        load_directions(plain)


def test_directions_and_sample_commands(cli, workdir):
    gan = workdir / "gan"
    result = cli("directions", gan, "--method", "sefa", "--num", "3", "--out", "sefa.safetensors",
                 "--preview", "sefa.png")
    assert result.exit_code == 0, result.output
    assert "3 sefa directions (sefa0, sefa1, sefa2)" in result.output
    assert Image.open("sefa.png").size[0] > Image.open("sefa.png").size[1]  # 3 rows of 7
    result = cli("sample", gan, "--direction", "sefa.safetensors:sefa1", "--alphas", "-3,3", "--steps", "5",
                 "--n", "4", "--out", "strip.npz")
    assert result.exit_code == 0, result.output
    images = np.load("strip.npz")["images"]
    assert images.shape == (20, 1, 8, 8)
    assert not (images[0] == images[4]).all()  # the ends of a row differ
    assert cli("sample", gan, "--direction", "sefa.safetensors:sefa0", "--out", "strip.png").exit_code == 0
    strip = Image.open("strip.png")
    assert strip.width < strip.height  # default: 8 rows of 7
    pca = cli("directions", gan, "--method", "pca", "--num", "2", "--samples", "300", "--out", "pca.safetensors")
    assert pca.exit_code == 0, pca.output
    clf = cli("directions", gan, "--method", "classifier", "--classifier", workdir / "clf.safetensors",
              "--target", "3", "--samples", "16", "--out", "clf-dirs.safetensors")
    assert clf.exit_code == 0 and "1 classifier directions (3)" in clf.output
    info = cli("directions", workdir / "info", "--method", "infogan", "--out", "info.safetensors")
    assert info.exit_code == 0 and "(c0, c1, cat0)" in info.output
    cats = cli("sample", workdir / "info", "--direction", "info.safetensors:cat0", "--n", "2", "--out", "cats.npz")
    assert cats.exit_code == 0 and np.load("cats.npz")["images"].shape == (6, 1, 8, 8)
    for args, message in (
        (["sample", gan, "--direction", "sefa.safetensors:nope", "--out", "x.png"], "no direction 'nope'"),
        (["sample", gan, "--direction", "sefa.safetensors", "--out", "x.png"], "expects FILE:NAME"),
        (["sample", gan, "--direction", "sefa.safetensors:sefa0", "--alphas", "a,b", "--out", "x.png"], "--alphas"),
        (["sample", workdir / "info", "--direction", "sefa.safetensors:sefa0", "--out", "x.png"], "belong to"),
        (["directions", gan, "--method", "sefa", "--classifier", "c.safetensors", "--out", "d.safetensors"],
         "no option 'classifier'"),
        (["directions", gan, "--method", "sefa", "--num", "99", "--out", "d.safetensors"], "at most 16"),
        (["directions", gan, "--method", "warp", "--out", "d.safetensors"], "unknown finder 'warp'"),
    ):
        bad = cli(*args)
        assert bad.exit_code == 2 and message in bad.output and "Traceback" not in bad.output, (args, bad.output)


def test_finders_and_controllers_are_listed_under_their_own_kinds_and_infogan_under_both(cli):
    import json

    controllers = {r["name"] for r in json.loads(cli("list", "controllers", "--json").output)}
    finders = {r["name"] for r in json.loads(cli("list", "finders", "--json").output)}
    assert controllers == {"infogan", "ss-infogan", "matching"}
    assert finders == {"infogan", "ss-infogan", "sefa", "pca", "classifier"}
    assert {r["name"] for r in json.loads(cli("list", "direction-finders", "--json").output)} == finders


def test_a_header_length_that_looks_like_pickle_magic_is_still_read(model, tmp_path):
    """safetensors starts with its header length; 640 bytes is 80 02 ..., the start of a pickle (protocol 2)."""
    import json

    from safetensors.torch import save

    from gantoolkit.controllers.directions import FORMAT, load_directions

    found = find("sefa", model, num=1)
    for pad in range(800):
        meta = {"format": FORMAT, "format_version": "1", "names": json.dumps(found.names),
                "method": json.dumps("sefa"), "source": json.dumps(found.source), "pad": json.dumps("x" * pad)}
        payload = save({"directions": found.vectors}, metadata=meta)
        if payload[:2] == b"\x80\x02":
            break
    else:
        pytest.fail("no padding gave a 640-byte header")
    path = tmp_path / "h640.safetensors"
    path.write_bytes(payload)
    assert load_directions(path, model).names == ["sefa0"]
