"""Images that are not square (issue 19, item 2): `--image-size HxW` (height first) through data, architectures,
training, sampling, resume, evaluation, the demo and export."""

from __future__ import annotations

import io
import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gantoolkit
from gantoolkit.config import RunConfig, apply_layer, format_image_size, parse_image_size
from gantoolkit.errors import ConfigError
from gantoolkit.files.export import TOLERANCE
from tests.conftest import TINY_DCGAN
from tests.test_cli import tensors_equal
from tests.test_datasets import no_network  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("one_thread")

#: 16 high, 8 wide
HW = (16, 8)
TRAIN = ["train", *TINY_DCGAN, "--loss", "bce", "--image-size", "16x8", "--log-every", "2", "--checkpoint-every", "2",
         "--sample-every", "2"]


def write_folder(root: Path, n: int = 24) -> Path:
    """`n` small PNGs of several aspect ratios (wide, tall, square), each a different colour."""
    root.mkdir()
    sizes = [(20, 12), (12, 30), (16, 16)]  # PIL sizes: (width, height)
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        pixels = np.full((h, w, 3), (i * 10 % 256, 255 - i * 7 % 256, i * 3 % 256), dtype=np.uint8)
        pixels[: h // 2, : w // 2] = 255 - pixels[: h // 2, : w // 2]
        Image.fromarray(pixels).save(root / f"{i:03d}.png")
    return root


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_folder(tmp_path / "pngs")


# -- the size: parsed, saved, read back --------------------------------------------------------------------------------


def test_image_size_is_a_side_or_height_x_width():
    assert parse_image_size("64x32") == (64, 32) and parse_image_size(" 64 X 32 ") == (64, 32)
    assert parse_image_size("64") == 64 and parse_image_size(64) == 64 and parse_image_size("32x32") == 32
    assert parse_image_size([16, 8]) == (16, 8) and parse_image_size(None) is None
    assert format_image_size((64, 32)) == "64x32" and format_image_size(64) == "64"
    for bad in ("64x", "x8", "64x32x2", "big", "-8", "6.5", True, [16]):
        with pytest.raises(ConfigError, match="expects a side or HEIGHTxWIDTH"):
            parse_image_size(bad)


def test_a_configuration_keeps_height_and_width_through_json_and_toml():
    config = apply_layer(RunConfig(), {"image_size": "16x8"}, "preset")
    assert config.image_size == (16, 8)
    saved = json.loads(config.dumps())
    assert saved["image_size"] == [16, 8]
    assert RunConfig.from_json(saved).image_size == (16, 8)
    assert RunConfig.from_json({"image_size": 32}).image_size == 32  # a square run saves (and reads) one side


# -- data ------------------------------------------------------------------------------------------------------------


def test_folder_images_are_scaled_to_cover_the_size_then_centre_cropped():
    from gantoolkit.builtin.datasets.imaging import resize_and_crop

    bands = np.zeros((10, 50, 3), dtype=np.uint8)  # 50 wide, 10 high: red | green | blue, 10, 30, 10 columns
    bands[:, :10, 0] = bands[:, 10:40, 1] = bands[:, 40:, 2] = 255
    for height, width in ((16, 8), (8, 8), (8, 16)):
        out = np.asarray(resize_and_crop(Image.fromarray(bands), (height, width)))
        assert out.shape == (height, width, 3)
        assert (out[:, :, 1] > 200).all() and (out[:, :, 0] < 60).all()  # the centre band, nothing of the others
    tall = np.ascontiguousarray(bands.transpose(1, 0, 2))  # 10 wide, 50 high: the bands are rows
    out = np.asarray(resize_and_crop(Image.fromarray(tall), (8, 16)))
    assert out.shape == (8, 16, 3) and (out[:, :, 1] > 200).all()
    square = np.asarray(resize_and_crop(Image.fromarray(bands), 8))  # one side: the shorter side becomes it
    assert square.shape == (8, 8, 3) and (square[:, :, 1] > 200).all()


@pytest.mark.parametrize("name, argument", [("digits", None), ("fake", "3x32x32")])
def test_sources_that_resize_make_height_by_width(name, argument):
    from gantoolkit.data import DataRequest
    from gantoolkit.registry import get_registry

    spec, _ = get_registry().get("dataset", name if argument is None else f"{name}:{argument}")
    dataset = spec.create({}).load(DataRequest(argument=argument, image_shape=HW))
    assert tuple(dataset.info.shape[1:]) == HW and tuple(dataset.data.shape[2:]) == HW


@pytest.mark.usefixtures("no_network")
def test_quickdraw_mnist_and_cifar_resize_to_height_by_width(tmp_path):
    from gantoolkit.builtin.datasets.cifar import CIFAR10
    from gantoolkit.builtin.datasets.quickdraw import QuickDraw
    from gantoolkit.builtin.datasets.torchvision_sets import MNIST
    from gantoolkit.data import DataRequest
    from tests.test_datasets import make_mnist, write_cifar

    make_mnist(tmp_path, "MNIST")
    write_cifar(tmp_path)
    (tmp_path / "doodles").mkdir()
    np.save(tmp_path / "doodles" / "cat.npy", np.random.default_rng(0).integers(0, 256, (6, 784), dtype=np.uint8))
    for source, argument, channels in ((MNIST(), None, 1), (CIFAR10(), None, 3),
                                       (QuickDraw(), str(tmp_path / "doodles"), 1)):
        dataset = source.load(DataRequest(argument=argument, data_root=tmp_path, image_shape=HW))
        assert dataset.info.shape == (channels, *HW) and tuple(dataset.data.shape[1:]) == (channels, *HW)


# -- architectures ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch, options", [("dcgan", {"ngf": 8, "ndf": 8}), ("r3gan", {"width_mult": 0.5})])
@pytest.mark.parametrize("shape", [(3, 8, 16), (3, 16, 8), (1, 32, 8)])
def test_dcgan_and_r3gan_build_forward_and_backward_at_height_by_width(arch, options, shape):
    from gantoolkit.models import build_models
    from gantoolkit.registry import get_registry
    from gantoolkit.testing import tiny_info

    config = apply_layer(RunConfig(), {"arch": {"name": arch, **options}, "latent_dim": 8}, "test")
    models = build_models(config, tiny_info(shape, classes=0), get_registry())
    torch.manual_seed(0)
    fake = models.generator(torch.randn(4, 8))
    assert tuple(fake.shape) == (4, *shape)
    scores = models.critic(fake)
    assert tuple(scores.shape) == (4,)
    scores.sum().backward()
    grads = [p.grad for p in (*models.generator.parameters(), *models.critic.parameters())]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_both_sides_double_the_same_number_of_times():
    from gantoolkit.builtin.archs.r3gan import R3GAN
    from gantoolkit.components import ModelSpec
    from gantoolkit.layers import base_map
    from gantoolkit.testing import tiny_info

    assert base_map(64, 64) == (4, 4) and base_map(64, 32) == (8, 4) and base_map(8, 32) == (4, 16)
    info = tiny_info((3, 32, 16), classes=0)
    g, d = R3GAN().build(ModelSpec(data=info, latent_dim=8, generator_input_dim=8,
                                   discriminator_input_shape=(3, 32, 16)))
    assert list(g.parameters_by_resolution()) == ["8x4", "16x8", "32x16"]
    assert list(d.parameters_by_resolution()) == ["8x4", "16x8", "32x16"]


def test_dcgan_at_64x64_keeps_pytorch_examples_layers():
    from gantoolkit.builtin.archs.dcgan import DCGAN
    from gantoolkit.components import ModelSpec
    from gantoolkit.testing import tiny_info

    g, d = DCGAN().build(ModelSpec(data=tiny_info((3, 64, 64), classes=0), latent_dim=100, generator_input_dim=100,
                                   discriminator_input_shape=(3, 64, 64)))
    first, final = g.main[0], d.final
    assert first.kernel_size == (4, 4) and final.kernel_size == (4, 4) and d.feature_dim == 512 * 16
    assert repr(first) == "ConvTranspose2d(100, 512, kernel_size=(4, 4), stride=(1, 1), bias=False)"


@pytest.mark.parametrize("arch, options", [("dcgan", {"ngf": 8, "ndf": 8}), ("r3gan", {"group_size": 8}),
                                           ("mlp", {"hidden_dim": 16, "g_depth": 2, "d_depth": 2})])
def test_the_conformance_kit_passes_on_images_that_are_not_square(arch, options):
    from gantoolkit.testing import WIDE_SHAPE, check_architecture

    check_architecture(arch, options, shapes=[WIDE_SHAPE, (3, 16, 8)])


def square_only_registry():
    """The built-ins and an architecture that does not declare `supports_rectangular` (mlp's networks)."""
    from gantoolkit.builtin.archs.mlp import MLP
    from gantoolkit.testing import plugin_registry

    class SquareOnly(MLP):
        supports_rectangular = False

    module = types.ModuleType("square_only_plugin")

    @gantoolkit.hookimpl
    def register_architectures(register):
        register("square-only", SquareOnly, summary="an architecture for square images only")

    module.register_architectures = register_architectures  # type: ignore[attr-defined]
    return plugin_registry(module)


def test_an_architecture_for_square_images_only_is_refused_in_one_line_with_the_fix():
    from gantoolkit.models import build_models
    from gantoolkit.testing import tiny_info

    registry = square_only_registry()
    config = apply_layer(RunConfig(), {"arch": "square-only"}, "test")
    with pytest.raises(ConfigError) as refused:
        build_models(config, tiny_info((3, 16, 8), classes=0), registry)
    assert refused.value.message == "architecture 'square-only' makes square images only, not 16x8"
    assert refused.value.hint.startswith("pass one side, e.g. --image-size 16, or use --arch ")
    assert "dcgan" in refused.value.hint and "r3gan" in refused.value.hint
    assert build_models(config, tiny_info((3, 8, 8), classes=0), registry).generator is not None  # squares: fine


def test_a_classifier_trains_on_images_that_are_not_square():
    from gantoolkit.classifiers import train_classifier
    from gantoolkit.data import to_model_space
    from gantoolkit.testing import tiny_dataset

    dataset = tiny_dataset((3, 16, 8), n=32)
    clf, _ = train_classifier(dataset, epochs=1, seed=0)
    assert clf.info.input_shape == [3, 16, 8]
    assert tuple(clf.logits(to_model_space(dataset.data[:4], dataset.info)).shape) == (4, 3)


# -- the CLI: train, sample, checkpoint, resume, evaluate, demo, export ----------------------------------------------


def test_a_folder_at_16x8_trains_samples_resumes_evaluates_and_exports(cli, folder):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'gantoolkit[export]')")
    data = ("--data", f"folder:{folder}")
    result = cli(*TRAIN, *data, "--steps", "4", "--out", "straight")
    assert result.exit_code == 0, result.output

    from gantoolkit.files.checkpoint import load_checkpoint

    ckpt = load_checkpoint(Path("straight/checkpoints/step-00000004.safetensors"))
    assert ckpt.data.shape == (3, *HW) and ckpt.config.image_size == HW

    assert cli("sample", "straight", "--n", "6", "--seed", "1", "--out", "grid.png").exit_code == 0
    assert Image.open("grid.png").size == (3 * (8 + 2) + 2, 2 * (16 + 2) + 2)  # 3 columns of 8 wide, 2 rows of 16 high
    assert cli("sample", "straight", "--n", "6", "--seed", "1", "--out", "s.npz").exit_code == 0
    with np.load("s.npz") as arrays:
        images = arrays["images"]
    assert images.shape == (6, 3, *HW)
    model = gantoolkit.load_generator(Path("straight"))
    assert np.array_equal(model.sample(6, seed=1).numpy(), images)  # rebuilt from the checkpoint: the same model

    assert cli(*TRAIN, *data, "--steps", "2", "--out", "split").exit_code == 0
    result = cli("train", "--resume", "split", "--steps", "4", *data)
    assert result.exit_code == 0, result.output
    assert tensors_equal(Path("straight/checkpoints/step-00000004.safetensors"),
                         Path("split/checkpoints/step-00000004.safetensors"))

    result = cli("evaluate", "straight", *data, "--features", "raw", "--metrics", "fd,precision,nn", "--n", "24",
                 "--out", "report.json")
    assert result.exit_code == 0, result.output
    report = json.loads(Path("report.json").read_text())
    assert report["fd"] is not None and report["precision"] is not None and Path("report.nn.png").is_file()

    from gantoolkit.demo.engine import DemoEngine

    engine = DemoEngine.load(Path("straight"), auto_directions=None)
    picture = engine.render(engine.settings(0, None, 0, 1, {}))
    assert picture.display.shape[0] == 2 * picture.display.shape[1]  # 16 high, 8 wide, enlarged alike
    assert np.asarray(Image.open(io.BytesIO(picture.png))).shape[:2] == HW

    for fmt, out in (("onnx", "g.onnx"), ("torchscript", "g.pt"), ("folder", "model")):
        result = cli("export", "straight", "--format", fmt, "--out", out)
        assert result.exit_code == 0, result.output
    z = model.latents(5, 2)
    expected = model.loaded.generate(z, None)
    session = ort.InferenceSession("g.onnx", providers=["CPUExecutionProvider"])
    assert json.loads(session.get_modelmeta().custom_metadata_map["sample_shape"]) == [3, *HW]
    out = session.run(None, {"z": z.numpy()})[0]
    assert out.shape == (5, 3, *HW) and np.abs(out - expected.numpy()).max() <= TOLERANCE
    with torch.no_grad():
        traced = torch.jit.load("g.pt")(z)
    assert tuple(traced.shape) == (5, 3, *HW) and torch.equal(traced, expected)
    config = json.loads(Path("model/config.json").read_text())
    assert config["generator"]["output_shape"] == [3, *HW]
    assert np.array_equal(gantoolkit.load_generator(Path("model")).sample(6, seed=1).numpy(), images)


BAD_SIZES = [
    ("64x33", "dcgan makes images whose height and width are each a power of two from 8 up, got 64x33 "
              "(pass --image-size 64x32)"),
    ("0x8", "--image-size must be between 1 and 4096 pixels, got 0x8"),
    ("64x", "--image-size expects a side or HEIGHTxWIDTH in pixels, got '64x'"),
]


@pytest.mark.parametrize("size, message", BAD_SIZES, ids=[s for s, _ in BAD_SIZES])
def test_bad_sizes_are_one_line_with_exit_code_2_and_nothing_written(cli, tmp_path, size, message):
    result = cli("train", *TINY_DCGAN, "--image-size", size, "--steps", "1", "--out", "run")
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_a_source_that_makes_square_images_only_says_so(cli, tmp_path):
    result = cli("train", *TINY_DCGAN, "--data", "stacked-digits", "--data-opt", "n=64", "--image-size", "16x8",
                 "--steps", "1", "--out", "run")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "error: dataset 'stacked-digits' made 16x16 images, not the --image-size 16x8 asked for (it makes square "
        "images only: pass one side, e.g. --image-size 16)"]
    assert not (tmp_path / "run").exists()
