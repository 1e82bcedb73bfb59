"""The built-in dataset sources, on small files written by the tests themselves (nothing is downloaded)."""

from __future__ import annotations

import json
import math
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantoolkit.builtin.datasets.cifar import CIFAR10
from gantoolkit.builtin.datasets.digits import Digits
from gantoolkit.builtin.datasets.fake import RandomImages
from gantoolkit.builtin.datasets.folder import ImageFolder
from gantoolkit.builtin.datasets.torchvision_sets import MNIST, FashionMNIST
from gantoolkit.builtin.datasets.toy import Mixture
from gantoolkit.data import DataRequest
from gantoolkit.errors import DataError


def one_line(e: pytest.ExceptionInfo[DataError]) -> str:
    text = str(e.value)
    assert "\n" not in text and e.value.hint, text
    return text


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a dataset tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    import torchvision.datasets.mnist as tv_mnist
    import torchvision.datasets.utils as tv_utils

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", refuse)
    monkeypatch.setattr(tv_utils, "download_url", refuse)
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", refuse)


# -- digits ---------------------------------------------------------------------------------------------------------


def test_digits() -> None:
    ds = Digits().load(DataRequest())
    assert len(ds) == 1797
    assert ds.data.shape == (1797, 1, 32, 32) and ds.data.dtype == torch.uint8
    assert int(ds.data.min()) == 0 and int(ds.data.max()) == 255
    assert ds.labels is not None and ds.labels.dtype == torch.int64
    assert sorted(ds.labels.unique().tolist()) == list(range(10))
    assert ds.info.shape == (1, 32, 32) and ds.info.modality == "image" and ds.info.num_classes == 10
    assert Digits().load(DataRequest(image_size=8)).data.shape[-2:] == (8, 8)


def test_digits_per_class_takes_the_first_n_of_each_class_for_small_data() -> None:
    full = Digits().load(DataRequest(image_size=8))
    small = Digits(per_class=18).load(DataRequest(image_size=8))
    assert len(small) == 180 and small.labels is not None and full.labels is not None
    assert torch.bincount(small.labels).tolist() == [18] * 10
    for c in range(10):  # the same images every time: the first 18 of the class, in the bundle's order
        assert torch.equal(small.data[small.labels == c], full.data[full.labels == c][:18])
    with pytest.raises(DataError) as e:
        Digits(per_class=0)
    assert "per_class=18" in one_line(e)


def test_digits_subset_seed_draws_a_fixed_random_n_of_each_class() -> None:
    full = Digits().load(DataRequest(image_size=8))
    drawn = Digits(per_class=18, subset_seed=0).load(DataRequest(image_size=8))
    again = Digits(per_class=18, subset_seed=0).load(DataRequest(image_size=8))
    other = Digits(per_class=18, subset_seed=1).load(DataRequest(image_size=8))
    first = Digits(per_class=18).load(DataRequest(image_size=8))
    assert torch.bincount(drawn.labels).tolist() == [18] * 10
    assert torch.equal(drawn.data, again.data) and not torch.equal(drawn.data, other.data)
    assert not torch.equal(drawn.data, first.data)
    rows = {tuple(row.flatten().tolist()) for row in full.data}
    assert all(tuple(row.flatten().tolist()) in rows for row in drawn.data)  # real digits, each of its own class
    with pytest.raises(DataError) as e:
        Digits(subset_seed=0)
    assert "per_class=N" in one_line(e)


# -- folder ---------------------------------------------------------------------------------------------------------


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def solid(w: int, h: int, value: int | tuple[int, int, int]) -> np.ndarray:
    if isinstance(value, int):
        return np.full((h, w), value, dtype=np.uint8)
    return np.tile(np.array(value, dtype=np.uint8), (h, w, 1))


def stripes(w: int, h: int, colours: list[tuple[int, int, int]], vertical: bool) -> np.ndarray:
    """Three equal bands of colour, side by side (vertical=True) or stacked."""
    out = np.zeros((h, w, 3), dtype=np.uint8)
    for i, colour in enumerate(colours):
        if vertical:
            out[:, i * w // 3 : (i + 1) * w // 3] = colour
        else:
            out[i * h // 3 : (i + 1) * h // 3] = colour
    return out


def load_folder(path: Path, size: int | None = 16, **kwargs: object) -> object:
    options = {k: kwargs.pop(k) for k in ("channels",) if k in kwargs}
    return ImageFolder(**options).load(DataRequest(argument=str(path), image_size=size, **kwargs))


def test_folder_class_subfolders(tmp_path: Path) -> None:
    save(tmp_path / "cats" / "b.png", solid(40, 20, (200, 10, 10)))
    save(tmp_path / "cats" / "A.JPG", solid(20, 30, (10, 200, 10)))
    save(tmp_path / "cats" / "nested" / "c.bmp", solid(16, 16, (10, 10, 200)))
    save(tmp_path / "dogs" / "d.webp", solid(64, 64, (50, 60, 70)))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    (tmp_path / "dogs" / ".hidden.png").write_bytes(b"macOS resource fork")
    (tmp_path / "empty").mkdir()
    ds = load_folder(tmp_path)
    assert ds.info.class_names == ("cats", "dogs") and ds.info.num_classes == 2
    assert ds.info.source == f"folder:{tmp_path}" and ds.info.modality == "image"
    assert ds.data.shape == (4, 3, 16, 16) and ds.data.dtype == torch.uint8 and ds.info.shape == (3, 16, 16)
    assert ds.labels is not None and ds.labels.dtype == torch.int64 and ds.labels.tolist() == [0, 0, 0, 1]
    # sorted order: A.JPG, b.png, nested/c.bmp, then dogs/d.webp; solid colours survive resizing
    assert ds.data[1, :, 8, 8].tolist() == [200, 10, 10]
    assert ds.data[2, :, 8, 8].tolist() == [10, 10, 200]
    assert ds.data[3, :, 8, 8].tolist() == [50, 60, 70]
    assert (ds.data[0, 1].int() - 200).abs().max() <= 3  # JPEG is lossy
    assert ds.info.extra["skipped"] == []
    assert torch.equal(load_folder(tmp_path).data, ds.data)  # deterministic


def test_folder_default_size_is_64(tmp_path: Path) -> None:
    save(tmp_path / "a.png", solid(100, 80, 7))
    assert load_folder(tmp_path, size=None).data.shape == (1, 1, 64, 64)


@pytest.mark.parametrize("vertical", [True, False])
def test_folder_resizes_shorter_side_then_crops_the_centre(tmp_path: Path, vertical: bool) -> None:
    w, h = (60, 20) if vertical else (20, 60)
    save(tmp_path / "wide.png", stripes(w, h, [(255, 0, 0), (0, 255, 0), (0, 0, 255)], vertical))
    image = load_folder(tmp_path).data[0].int()
    inner = image[:, 2:-2, 2:-2]  # away from the crop edges, where the filter sees the neighbouring bands
    assert inner[1].min() >= 250 and inner[0].max() <= 5 and inner[2].max() <= 5


def test_folder_upscales_small_images(tmp_path: Path) -> None:
    save(tmp_path / "small.png", solid(5, 9, 100))
    assert load_folder(tmp_path, size=32).data.unique().tolist() == [100]


def test_folder_channels(tmp_path: Path) -> None:
    gray = save(tmp_path / "gray" / "g.png", solid(16, 16, 90)).parent
    assert load_folder(gray).data.shape == (1, 1, 16, 16)  # all greyscale -> 1 channel
    assert load_folder(gray, channels=3).data.shape == (1, 3, 16, 16)

    mixed = tmp_path / "mixed"
    save(mixed / "a.png", solid(16, 16, 90))
    save(mixed / "b.png", solid(16, 16, (255, 0, 0)))
    ds = load_folder(mixed)
    assert ds.data.shape == (2, 3, 16, 16) and ds.labels is None
    assert ds.data[0].unique().tolist() == [90]  # the grey image is repeated on all three channels
    as_gray = load_folder(mixed, channels=1)
    assert as_gray.data.shape == (2, 1, 16, 16) and as_gray.data[1].unique().tolist() == [76]  # ITU-R 601 luma of red

    with pytest.raises(DataError, match="channels"):
        ImageFolder(channels=2)


def test_folder_reads_16_bit_grey(tmp_path: Path) -> None:
    save(tmp_path / "deep.png", np.full((8, 8), 65535, dtype=np.uint16))
    save(tmp_path / "mid.png", np.full((8, 8), 257 * 128, dtype=np.uint16))
    ds = load_folder(tmp_path, size=8)
    assert ds.data.shape == (2, 1, 8, 8)
    assert ds.data[0].unique().tolist() == [255] and ds.data[1].unique().tolist() == [128]


def test_folder_unlabelled(tmp_path: Path) -> None:
    for i in range(3):
        save(tmp_path / f"{i}.png", solid(20, 20, (i, i, i)))
    ds = load_folder(tmp_path)
    assert ds.labels is None and ds.info.num_classes == 0 and ds.info.class_names == () and len(ds) == 3
    assert [int(ds.data[i].max()) for i in range(3)] == [0, 1, 2]


def test_folder_mixed_layout_is_an_error(tmp_path: Path) -> None:
    save(tmp_path / "top.png", solid(8, 8, 1))
    save(tmp_path / "cls" / "x.png", solid(8, 8, 1))
    with pytest.raises(DataError, match="both images at its top level"):
        load_folder(tmp_path)


@pytest.mark.parametrize("garbage", [b"definitely not a png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_folder_bad_image(tmp_path: Path, capsys: pytest.CaptureFixture[str], garbage: bytes) -> None:
    save(tmp_path / "good.png", solid(8, 8, (1, 2, 3)))
    (tmp_path / "bad.png").write_bytes(garbage)
    with pytest.raises(DataError) as e:
        load_folder(tmp_path)
    assert "bad.png" in one_line(e) and "--on-bad-image skip" in str(e.value)

    ds = load_folder(tmp_path, on_bad_image="skip")
    assert len(ds) == 1 and ds.info.extra["skipped"] == ["bad.png"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "skipped 1" in err


def test_folder_truncated_image(tmp_path: Path) -> None:
    good = save(tmp_path / "cls" / "good.png", np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    (tmp_path / "cls" / "cut.png").write_bytes(good.read_bytes()[:300])
    with pytest.raises(DataError, match=r"cls/cut\.png"):
        load_folder(tmp_path)
    ds = load_folder(tmp_path, on_bad_image="skip")
    assert ds.info.extra["skipped"] == ["cls/cut.png"] and ds.info.class_names == ("cls",)


def test_folder_every_image_bad(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="none of the 1 image"):
        load_folder(tmp_path, on_bad_image="skip")


def test_folder_path_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as e:
        load_folder(tmp_path / "nope")
    one_line(e)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="is a file"):
        load_folder(tmp_path / "file.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images") as e:
        load_folder(tmp_path / "empty")
    one_line(e)
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("hi")
    with pytest.raises(DataError, match="none with an image extension"):
        load_folder(tmp_path / "texts")
    with pytest.raises(DataError, match="needs a path"):
        ImageFolder().load(DataRequest())


# -- MNIST / Fashion-MNIST ------------------------------------------------------------------------------------------


def write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """The real IDX format: big-endian magic (2051 images, 2049 labels) and dimensions, then the bytes."""
    raw.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def make_mnist(root: Path, folder: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    sets = {}
    for prefix, n in (("train", 12), ("t10k", 5)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(root / folder / "raw", prefix, images, labels)
        sets[prefix] = images, labels
    return sets


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(("source", "folder"), [(MNIST, "MNIST"), (FashionMNIST, "FashionMNIST")])
def test_mnist_like_from_idx_files(tmp_path: Path, source: type, folder: str) -> None:
    sets = make_mnist(tmp_path, folder)
    ds = source().load(DataRequest(data_root=tmp_path, image_size=28))
    images, labels = sets["train"]
    assert ds.data.shape == (12, 1, 28, 28) and ds.data.dtype == torch.uint8
    assert np.array_equal(ds.data[:, 0].numpy(), images)
    assert ds.labels is not None and ds.labels.dtype == torch.int64 and ds.labels.tolist() == labels.tolist()
    assert ds.info.num_classes == 10 and ds.info.shape == (1, 28, 28) and ds.info.extra["split"] == "train"

    default = source().load(DataRequest(data_root=tmp_path))
    assert default.data.shape == (12, 1, 32, 32) and default.data.dtype == torch.uint8
    test = source(split="test").load(DataRequest(data_root=tmp_path, image_size=28))
    assert np.array_equal(test.data[:, 0].numpy(), sets["t10k"][0])


@pytest.mark.usefixtures("no_network")
def test_mnist_class_names(tmp_path: Path) -> None:
    import torchvision

    make_mnist(tmp_path, "MNIST")
    make_mnist(tmp_path, "FashionMNIST")
    mnist = MNIST().load(DataRequest(data_root=tmp_path))
    fashion = FashionMNIST().load(DataRequest(data_root=tmp_path))
    assert mnist.info.class_names == tuple("0123456789") and mnist.info.source == "mnist"
    assert fashion.info.class_names == tuple(torchvision.datasets.FashionMNIST.classes)
    assert fashion.info.source == "fashion-mnist" and fashion.info.class_names[0] == "T-shirt/top"


@pytest.mark.usefixtures("no_network")
def test_mnist_resize_keeps_uniform_values(tmp_path: Path) -> None:
    write_idx(tmp_path / "MNIST" / "raw", "train", np.full((2, 28, 28), 77, np.uint8), np.zeros(2, np.uint8))
    write_idx(tmp_path / "MNIST" / "raw", "t10k", np.full((1, 28, 28), 77, np.uint8), np.zeros(1, np.uint8))
    assert MNIST().load(DataRequest(data_root=tmp_path, image_size=16)).data.unique().tolist() == [77]


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(("source", "folder"), [(MNIST, "MNIST"), (FashionMNIST, "FashionMNIST")])
def test_mnist_like_missing_files(tmp_path: Path, source: type, folder: str) -> None:
    with pytest.raises(DataError) as e:
        source().load(DataRequest(data_root=tmp_path))
    text = one_line(e)
    assert "--download" in text and str(tmp_path / folder / "raw") in text
    assert not (tmp_path / folder).exists()  # nothing was created or fetched


@pytest.mark.usefixtures("no_network")
def test_mnist_only_one_split_present_still_needs_all_files(tmp_path: Path) -> None:
    make_mnist(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        MNIST().load(DataRequest(data_root=tmp_path))


@pytest.mark.usefixtures("no_network")
def test_mnist_corrupt_files(tmp_path: Path) -> None:
    make_mnist(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\0\0\0\0garbage")
    with pytest.raises(DataError, match="corrupt") as e:
        MNIST().load(DataRequest(data_root=tmp_path))
    one_line(e)


def test_mnist_download_failure_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    def fail(self: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried somewhere")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fail)
    with pytest.raises(DataError, match="could not download MNIST") as e:
        MNIST().load(DataRequest(data_root=tmp_path, download=True))
    one_line(e)


def test_split_option_is_checked() -> None:
    for source in (MNIST, FashionMNIST, CIFAR10):
        with pytest.raises(DataError, match="split"):
            source(split="validation")


# -- CIFAR-10 -------------------------------------------------------------------------------------------------------

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar(root: Path, per_batch: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Binary batches: each record is a label byte then 1024 R, 1024 G, 1024 B bytes; plus batches.meta.txt."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch, dtype=np.uint8)
        records = np.concatenate([labels[:, None], images.reshape(per_batch, -1)], axis=1)
        (folder / name).write_bytes(records.tobytes())
        out["test" if name.startswith("test") else "train"].append((images, labels))
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR_NAMES) + "\n\n")
    return {k: (np.concatenate([b[0] for b in v]), np.concatenate([b[1] for b in v])) for k, v in out.items()}


@pytest.mark.usefixtures("no_network")
def test_cifar10_binary(tmp_path: Path) -> None:
    sets = write_cifar(tmp_path)
    ds = CIFAR10().load(DataRequest(data_root=tmp_path))
    images, labels = sets["train"]
    assert ds.data.shape == (15, 3, 32, 32) and ds.data.dtype == torch.uint8 and ds.info.shape == (3, 32, 32)
    assert np.array_equal(ds.data.numpy(), images)
    assert ds.labels is not None and ds.labels.dtype == torch.int64 and ds.labels.tolist() == labels.tolist()
    assert ds.info.class_names == tuple(CIFAR_NAMES) and ds.info.num_classes == 10 and ds.info.source == "cifar10"
    test = CIFAR10(split="test").load(DataRequest(data_root=tmp_path, image_size=16))
    assert test.data.shape == (3, 3, 16, 16) and test.labels.tolist() == sets["test"][1].tolist()


@pytest.mark.usefixtures("no_network")
def test_cifar10_pixel_layout(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    write_cifar(tmp_path, per_batch=1)
    record = np.zeros(3073, dtype=np.uint8)
    record[0] = 7
    record[1 + 0 * 1024 + 1 * 32 + 2] = 11  # red, row 1, column 2
    record[1 + 1 * 1024 + 31 * 32 + 0] = 22  # green, row 31, column 0
    record[1 + 2 * 1024 + 0 * 32 + 31] = 33  # blue, row 0, column 31
    (folder / "test_batch.bin").write_bytes(record.tobytes())
    image = CIFAR10(split="test").load(DataRequest(data_root=tmp_path)).data[0]
    assert image[0, 1, 2] == 11 and image[1, 31, 0] == 22 and image[2, 0, 31] == 33 and int(image.sum()) == 66


@pytest.mark.usefixtures("no_network")
def test_cifar10_missing_and_truncated(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        CIFAR10().load(DataRequest(data_root=tmp_path))
    assert "--download" in one_line(e) and "cifar-10-batches-bin" in str(e.value)

    write_cifar(tmp_path)
    batch = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"data_batch_3\.bin is truncated") as e:
        CIFAR10().load(DataRequest(data_root=tmp_path))
    one_line(e)


def test_cifar10_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils

    calls = []

    def fake_download(url: str, download_root: str, md5: str | None = None, **kwargs: object) -> None:
        calls.append((url, md5))
        write_cifar(Path(download_root), per_batch=2)

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", fake_download)
    ds = CIFAR10().load(DataRequest(data_root=tmp_path / "new", download=True))
    assert len(ds) == 10
    assert calls == [("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")]
    CIFAR10().load(DataRequest(data_root=tmp_path / "new", download=True))
    assert len(calls) == 1  # present files are not fetched again

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("File not found or corrupted.")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", broken)
    with pytest.raises(DataError, match="could not download CIFAR-10"):
        CIFAR10().load(DataRequest(data_root=tmp_path / "other", download=True))


# -- toy mixtures ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count", "std"), [("ring", 8, 0.01), ("grid", 25, 0.05)])
def test_toy_mixture(name: str, count: int, std: float) -> None:
    ds = Mixture(n=20_000).load(DataRequest(argument=name))
    info = ds.info
    assert ds.data.shape == (20_000, 2) and ds.data.dtype == torch.float32
    assert info.modality == "vector" and info.shape == (2,) and info.source == f"toy:{name}"
    assert info.num_classes == count and len(info.class_names) == count
    assert info.extra["std"] == std and info.extra["mixture"] == name
    json.dumps(info.to_json())  # metrics and checkpoints store it

    modes = info.extra["modes"]
    if name == "ring":
        expected = [[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)]
    else:
        expected = [[x, y] for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)]
    np.testing.assert_allclose(modes, expected, rtol=0, atol=1e-12)
    assert len({(round(x, 6), round(y, 6)) for x, y in modes}) == count  # all distinct (no 0 == 2*pi duplicate)

    assert ds.labels is not None and ds.labels.dtype == torch.int64
    means = torch.tensor(modes)
    for k in range(count):
        points = ds.data[ds.labels == k].double()
        assert len(points) > 20_000 / count * 0.8  # each mode drawn about uniformly
        assert (points.mean(0) - means[k].double()).abs().max() < 5 * std / math.sqrt(len(points))
        assert points.std(0).sub(std).abs().max() < 0.1 * std
    nearest = torch.cdist(ds.data, means).argmin(1)
    assert torch.equal(nearest, ds.labels)


def test_toy_is_the_same_for_every_run() -> None:
    a = Mixture(n=100).load(DataRequest(argument="ring", seed=1))
    b = Mixture(n=100).load(DataRequest(argument="ring", seed=2))
    assert torch.equal(a.data, b.data) and torch.equal(a.labels, b.labels)
    assert len(Mixture().load(DataRequest(argument="grid"))) == 100_000


def test_toy_errors() -> None:
    for argument in ("spiral", None, ""):
        with pytest.raises(DataError) as e:
            Mixture(n=10).load(DataRequest(argument=argument))
        assert "ring" in one_line(e) and "grid" in str(e.value)
    with pytest.raises(DataError, match="between 1 and 10,000,000, got 0"):
        Mixture(n=0)


# -- fake -----------------------------------------------------------------------------------------------------------


def test_fake_images() -> None:
    ds = RandomImages(n=8).load(DataRequest(argument="3x64x64"))
    assert ds.data.shape == (8, 3, 64, 64) and ds.data.dtype == torch.uint8 and ds.labels is None
    assert ds.info.source == "fake:3x64x64" and ds.info.shape == (3, 64, 64) and ds.info.num_classes == 0
    assert int(ds.data.min()) == 0 and int(ds.data.max()) == 255
    assert torch.equal(ds.data, RandomImages(n=8).load(DataRequest(argument="3x64x64", seed=5)).data)
    assert RandomImages(n=2).load(DataRequest(argument="1x8x12")).data.shape == (2, 1, 8, 12)
    assert RandomImages(n=2).load(DataRequest(argument="4x8x8")).info.shape == (4, 8, 8)
    resized = RandomImages(n=2).load(DataRequest(argument="3x64x64", image_size=16))
    assert resized.data.shape == (2, 3, 16, 16) and resized.info.shape == (3, 16, 16)
    assert len(RandomImages().load(DataRequest(argument="1x4x4"))) == 1024


@pytest.mark.parametrize("argument", [None, "", "3x64", "axbxc", "3x64x64x1", "0x8x8", "5x8x8", "3x0x8", "3x-1x8"])
def test_fake_bad_arguments(argument: str | None) -> None:
    with pytest.raises(DataError) as e:
        RandomImages(n=2).load(DataRequest(argument=argument))
    one_line(e)
    assert "fake:3x64x64" in str(e.value)


def test_fake_refuses_huge_requests() -> None:
    with pytest.raises(DataError, match="GiB"):
        RandomImages(n=10_000).load(DataRequest(argument="3x1024x1024"))


# -- registry -------------------------------------------------------------------------------------------------------


def test_registry_resolves_dataset_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANTOOL_DISABLE_PLUGIN_AUTOLOAD", "1")
    from gantoolkit.registry import Registry

    reg = Registry.load()
    expected = {
        "digits": Digits, "folder": ImageFolder, "mnist": MNIST, "fashion-mnist": FashionMNIST,
        "cifar10": CIFAR10, "toy": Mixture, "fake": RandomImages,
    }
    for name, cls in expected.items():
        spec, argument = reg.get("dataset", name if name not in ("folder", "toy", "fake") else f"{name}:x")
        assert spec.load() is cls
    spec, argument = reg.get("dataset", "toy:ring")
    assert argument == "ring"
    source = spec.create({"n": "50"})
    assert isinstance(source, Mixture) and len(source.load(DataRequest(argument=argument))) == 50
    spec, argument = reg.get("dataset", "folder:/x/y")
    assert argument == "/x/y" and "channels" in spec.options()
    assert reg.get("dataset", "fake:3x64x64")[1] == "3x64x64"
    assert reg.create("dataset", "mnist", {"split": "test"}).split == "test"
    assert reg.get("dataset", "cifar10")[0].options()["split"].default == "train"


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10"])
def test_the_conformance_kit_passes_the_downloadable_datasets_on_files_in_their_format(tmp_path: Path, name: str):
    """The sweep over registered components skips these when their files are absent; here they are present."""
    from gantoolkit.testing import check_component

    if name == "cifar10":
        write_cifar(tmp_path)
    else:
        make_mnist(tmp_path, {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[name])
    check_component("dataset", name, data_root=tmp_path)  # loads, checks the tensors, trains a small model
