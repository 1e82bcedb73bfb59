"""`quickdraw:PATH`: Quick, Draw! numpy bitmaps written here in the release's format (N×784 uint8), trained on through
the CLI, refused in one line when they are not bitmaps, and downloaded from a local HTTP server (never the network)."""

from __future__ import annotations

import http.server
import json
import pickle
import socket
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gantoolkit.builtin.datasets import quickdraw_download
from gantoolkit.builtin.datasets.quickdraw import QuickDraw
from gantoolkit.data import DataRequest
from tests.conftest import TINY_DCGAN
from tests.test_cli import tensors_equal

pytestmark = pytest.mark.usefixtures("one_thread")

CATEGORIES = ("cat", "dog", "hot dog")
MARKER = "EXECUTED"
PRESET = ("apple", "cat", "fish", "house", "tree")


class Payload:
    """Unpickling this creates the file MARKER in the working directory: proof that a file was executed."""

    def __reduce__(self):
        return (open, (MARKER, "w"))


def bitmaps(n: int, seed: int) -> np.ndarray:
    """n doodle-like rows: white (255) strokes on black, as the release stores them."""
    return np.where(np.random.default_rng(seed).random((n, 784)) < 0.15, 255, 0).astype(np.uint8)


def write_categories(folder: Path, names=CATEGORIES, n: int = 40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        np.save(folder / f"{name}.npy", bitmaps(n, seed=i))
    return folder


def one_error_line(result, message: str) -> str:
    """The command was refused with exit code 2 and one `error:` line on stderr containing `message`."""
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and message in lines[0], lines[0]
    return lines[0]


def train(cli, data: str, *extra: str):
    return cli("train", *TINY_DCGAN, "--data", data, "--cond", "onehot", "--image-size", "8", "--log-every", "1",
               *extra)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Any connection to a host other than this machine fails the test: the release is never contacted."""
    connect = socket.socket.connect

    def guarded(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"a test tried to reach {address!r}")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


class Release(http.server.SimpleHTTPRequestHandler):
    """Serves the files of a folder, records each path asked for, and sends `/short.npy` cut off mid-body."""

    requests: list[str]

    def do_GET(self):
        self.requests.append(self.path)
        if self.path == "/short.npy":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x93NUMPY")
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@dataclass
class Served:
    folder: Path
    requests: list[str]


@pytest.fixture
def release(tmp_path, monkeypatch):
    """A local stand-in for the release: files written into `folder` are served at BASE_URL."""
    served = Served(tmp_path / "release", [])
    served.folder.mkdir()
    handler = type("Handler", (Release,), {"requests": served.requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(served.folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(quickdraw_download, "BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    yield served
    server.shutdown()
    server.server_close()


# -- reading -------------------------------------------------------------------------------------------------------


def test_a_folder_is_labelled_by_file_stems_and_takes_the_first_rows_of_each(tmp_path, monkeypatch):
    folder = write_categories(tmp_path / "doodles")
    loads = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: loads.append(k) or real_load(*a, **k))
    ds = QuickDraw(per_class=5).load(DataRequest(argument=str(folder), image_size=28))
    assert ds.info.class_names == CATEGORIES and ds.info.num_classes == 3 and ds.info.shape == (1, 28, 28)
    assert ds.labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5 and ds.info.extra["rows"] == [5, 5, 5]
    for i in range(3):  # at 28 the pixels are the files' own: the first 5 rows of each category, in order
        assert np.array_equal(ds.data[5 * i:5 * i + 5].reshape(5, 784).numpy(), bitmaps(40, seed=i)[:5])
    assert loads == [{"allow_pickle": False, "mmap_mode": "r"}] * 3
    assert QuickDraw().load(DataRequest(argument=str(folder))).info.shape == (1, 32, 32)  # the default size
    assert len(QuickDraw(per_class=500).load(DataRequest(argument=str(folder)))) == 120  # a cap above N takes N


def test_categories_pick_files_and_a_single_file_is_unlabelled(tmp_path):
    folder = write_categories(tmp_path / "doodles")
    picked = QuickDraw(categories=("hot dog", "cat")).load(DataRequest(argument=str(folder)))
    assert picked.info.class_names == ("cat", "hot dog") and len(picked) == 80
    single = QuickDraw(per_class=7).load(DataRequest(argument=str(folder / "dog.npy"), image_size=16))
    assert single.labels is None and single.info.num_classes == 0 and single.data.shape == (7, 1, 16, 16)


def test_the_conformance_kit_passes_quickdraw_on_files_in_the_release_format(tmp_path):
    from gantoolkit.testing import check_dataset

    folder = write_categories(tmp_path / "doodles", n=30)
    check_dataset("quickdraw", {"per_class": 20}, argument=str(folder))  # loads, checks, trains a small model


# -- through the CLI -----------------------------------------------------------------------------------------------


def test_train_on_three_categories_samples_one_column_each_and_keeps_their_names(cli, tmp_path):
    write_categories(tmp_path / "doodles")
    result = train(cli, "quickdraw:doodles", "--steps", "2", "--sample-every", "2", "--checkpoint-every", "2",
                   "--data-opt", "per_class=32", "--out", "run")
    assert result.exit_code == 0, result.output
    grid = Image.open("run/samples/step-00000002.png")
    assert grid.width == 3 * 8 + 4 * 2  # one column of 8 px images per category, 2 px apart
    info = json.loads(cli("info", "run", "--json").output)
    assert info["data"]["class_names"] == list(CATEGORIES) and info["data"]["extra"]["rows"] == [32, 32, 32]
    assert cli("sample", "run", "--n", "4", "--class", "hot dog", "--out", "hot.npz").exit_code == 0
    assert np.load("hot.npz")["labels"].tolist() == [2, 2, 2, 2]
    assert cli("sample", "run", "--n", "3", "--class", "cat", "--out", "cats").exit_code == 0
    assert sorted(p.name for p in Path("cats").iterdir()) == ["000000-cat.png", "000001-cat.png", "000002-cat.png"]


def test_resume_equals_uninterrupted_training_bit_for_bit(cli, tmp_path):
    write_categories(tmp_path / "doodles")
    common = ("--data-opt", "per_class=32", "--ema", "0.9", "--checkpoint-every", "2")
    assert train(cli, "quickdraw:doodles", *common, "--steps", "4", "--out", "straight").exit_code == 0
    assert train(cli, "quickdraw:doodles", *common, "--steps", "2", "--out", "split").exit_code == 0
    result = cli("train", "--resume", "split", "--steps", "4", "--data", "quickdraw:doodles")
    assert result.exit_code == 0, result.output
    assert tensors_equal(Path("straight/checkpoints/step-00000004.safetensors"),
                         Path("split/checkpoints/step-00000004.safetensors"))


def object_npy(path: Path) -> None:
    np.save(path, np.array([Payload(), 1], dtype=object), allow_pickle=True)


def pickled(path: Path) -> None:
    path.write_bytes(pickle.dumps(Payload()))


def truncated(path: Path) -> None:
    np.save(path, bitmaps(10, 0))
    path.write_bytes(path.read_bytes()[:-784])


@pytest.mark.parametrize("make, data, message", [
    (lambda p: np.save(p, np.zeros((5, 28, 28), np.uint8)), "quickdraw:doodles",
     "doodles/cat.npy holds a uint8 array of shape (5, 28, 28), not Quick, Draw! bitmaps (N×784 uint8"),
    (lambda p: np.save(p, np.zeros((5, 784), np.float32)), "quickdraw:doodles/cat.npy",
     "doodles/cat.npy holds a float32 array of shape (5, 784), not Quick, Draw! bitmaps"),
    (lambda p: np.save(p, np.zeros((0, 784), np.uint8)), "quickdraw:doodles",
     "doodles/cat.npy holds no drawings (shape (0, 784))"),
    (lambda p: p.with_suffix(".txt").write_text("not a drawing"), "quickdraw:doodles",
     "no .npy files in doodles (found 1 other entry)"),
    (pickled, "quickdraw:doodles", "doodles/cat.npy is a pickle (protocol"),
    (object_npy, "quickdraw:doodles", "doodles/cat.npy holds Python objects (dtype object)"),
    (truncated, "quickdraw:doodles", "doodles/cat.npy is truncated"),
    (lambda p: None, "quickdraw:nowhere", "Quick, Draw! path 'nowhere' does not exist"),
    (lambda p: np.save(p, bitmaps(5, 0)), "quickdraw:doodles --data-opt categories=cat,dog",
     "doodles has no dog.npy (pass --download"),
    (lambda p: np.save(p, bitmaps(5, 0)), "quickdraw:doodles --data-opt categories=../cat",
     "quickdraw category '../cat' is not a category name"),
], ids=["shape", "dtype", "empty", "no-npy", "pickle", "object", "truncated", "missing", "missing-category",
        "category-path"])
def test_bad_input_is_one_line_and_nothing_is_run_or_executed(cli, tmp_path, make, data, message):
    (tmp_path / "doodles").mkdir()
    make(tmp_path / "doodles" / "cat.npy")
    name, *options = data.split(" ")
    one_error_line(train(cli, name, *options, "--steps", "1"), message)
    assert not (tmp_path / MARKER).exists() and not (tmp_path / "runs").exists()


# -- downloading ---------------------------------------------------------------------------------------------------


def test_the_preset_downloads_its_categories_once_then_reads_them(cli, tmp_path, release):
    write_categories(release.folder, (*PRESET, "zebra"), n=24)
    tiny = ("--steps", "1", "--image-size", "8", "--arch-opt", "ngf=8", "--arch-opt", "ndf=8", "--batch-size", "16",
            "--latent-dim", "16", "--data-opt", "per_class=16")
    missing = cli("train", "--config", "quickdraw-doodles", *tiny, "--out", "never")
    one_error_line(missing, "Quick, Draw! path 'data/quickdraw' does not exist")
    assert release.requests == [] and not Path("data").exists()

    result = cli("train", "--config", "quickdraw-doodles", "--download", *tiny, "--out", "first")
    assert result.exit_code == 0, result.output
    assert sorted(release.requests) == [f"/{name}.npy" for name in PRESET]  # the preset's five, not zebra
    assert sorted(p.name for p in Path("data/quickdraw").iterdir()) == [f"{name}.npy" for name in PRESET]
    for name in PRESET:
        assert Path(f"data/quickdraw/{name}.npy").read_bytes() == (release.folder / f"{name}.npy").read_bytes()
    info = json.loads(cli("info", "first", "--json").output)["data"]
    assert info["class_names"] == list(PRESET) and info["source"] == "quickdraw:data/quickdraw"

    again = cli("train", "--config", "quickdraw-doodles", "--download", *tiny, "--out", "second")
    assert again.exit_code == 0, again.output
    assert len(release.requests) == len(PRESET) and "downloading" not in again.stderr  # nothing fetched twice


def test_a_category_name_with_spaces_is_fetched_quoted_into_a_new_folder(tmp_path, release):
    write_categories(release.folder, ("hot dog", "The Eiffel Tower"), n=12)
    source = QuickDraw(categories=("hot dog", "The Eiffel Tower"))
    ds = source.load(DataRequest(argument=str(tmp_path / "new" / "folder"), download=True))
    assert sorted(release.requests) == ["/The%20Eiffel%20Tower.npy", "/hot%20dog.npy"]
    assert ds.info.class_names == ("The Eiffel Tower", "hot dog") and len(ds) == 24
    assert sorted(p.name for p in (tmp_path / "new" / "folder").iterdir()) == ["The Eiffel Tower.npy", "hot dog.npy"]


def failed_download(cli, tmp_path, category: str, message: str) -> str:
    """The download is refused in one error line after its progress line; nothing is left in the folder."""
    (tmp_path / "doodles").mkdir()
    result = train(cli, "quickdraw:doodles", "--download", "--data-opt", f"categories={category}", "--steps", "1")
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert [line.split(" ")[0] for line in lines] == ["downloading", "error:"], result.stderr
    assert message in lines[1], lines[1]
    assert list((tmp_path / "doodles").iterdir()) == [] and not (tmp_path / "runs").exists()
    return lines[1]


def test_a_category_the_release_does_not_have_is_one_line(cli, tmp_path, release):
    line = failed_download(cli, tmp_path, "unicorn", "Quick, Draw! has no category 'unicorn' (")
    assert "/unicorn.npy answered HTTP 404" in line and "categories.txt" in line


def test_an_unreachable_release_is_one_line(cli, tmp_path, monkeypatch):
    with socket.socket() as closed:  # a port nothing listens on once this socket is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(quickdraw_download, "BASE_URL", f"http://127.0.0.1:{port}/")
    line = failed_download(cli, tmp_path, "cat", "could not download Quick, Draw! category 'cat' from http://127.0.0")
    assert "Connection refused" in line and "check the network" in line


def test_a_cut_off_or_foreign_download_never_takes_the_files_name(cli, tmp_path, release):
    line = failed_download(cli, tmp_path, "short", "could not download Quick, Draw! category 'short'")
    assert "the connection closed after 6 of 100,000 bytes" in line
    np.save(release.folder / "cat.npy", np.zeros((3, 28, 28), np.uint8))
    (tmp_path / "doodles").rmdir()
    failed_download(cli, tmp_path, "cat", "the download of 'cat' from http://127.0.0.1")
