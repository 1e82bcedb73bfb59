"""Folders larger than memory: decoded once into the image cache, streamed by DataLoader workers in the order the
in-memory path draws, resumed exactly; the cache rebuilt when its files change; `gantool cache`; bad input in one
line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gantoolkit.builtin.datasets import imaging
from gantoolkit.builtin.datasets.folder import ImageFolder
from gantoolkit.data import DataRequest, DeviceBatches
from gantoolkit.data.streaming import StreamBatches, stream_reason
from gantoolkit.errors import DataError
from gantoolkit.training.distributed import Processes
from tests.conftest import TINY_DCGAN
from tests.test_cli import tensors_equal
from tests.test_datasets import save

pytestmark = pytest.mark.usefixtures("one_thread")

#: 64 RGB images of 8x8 decode to 12,288 bytes: more than the 4K cap the tests impose; 4 batches of 16 an epoch
N = 64
COMMON = (*TINY_DCGAN, "--image-size", "8", "--loss", "bce", "--cond", "onehot", "--ema", "0.9", "--lr-decay", "0",
          "--checkpoint-every", "6", "--log-every", "3", "--sample-every", "100", "--workers", "2")


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "image-cache"
    monkeypatch.setenv("GANTOOL_DATA_CACHE", str(root))
    monkeypatch.delenv("GANTOOL_DATA_MEMORY", raising=False)
    return root


@pytest.fixture
def decodes(monkeypatch) -> list[Path]:
    """Every image decoded (the folder source decodes through imaging.load_image)."""
    calls: list[Path] = []
    real = imaging.load_image

    def counting(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(imaging, "load_image", counting)
    return calls


def write_folder(folder: Path, n: int = N) -> Path:
    """n random 12x10 RGB PNGs in two class subfolders."""
    rng = np.random.default_rng(0)
    for i in range(n):
        save(folder / ("a" if i % 2 else "b") / f"{i:03d}.png", rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
    return folder


def load(folder: Path, **options):
    on_bad_image = options.pop("on_bad_image", "error")
    return ImageFolder(**options).load(DataRequest(argument=str(folder), image_size=8, on_bad_image=on_bad_image,
                                                   image_shape=(8, 8)))


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.mark.process
def test_a_folder_over_the_memory_cap_streams_resumes_exactly_with_two_workers_and_reuses_its_cache(
        cli, tmp_path, own_cache, decodes, monkeypatch):
    write_folder(tmp_path / "faces")
    monkeypatch.setenv("GANTOOL_DATA_MEMORY", "4K")
    result = cli("train", *COMMON, "--data", "folder:faces", "--steps", "12", "--out", "straight")
    assert result.exit_code == 0, result.output
    assert "streaming 64 images from the image cache" in result.stderr, result.stderr
    assert "with 2 DataLoader workers (12.0 KiB decoded is more than the 4.0 KiB GANTOOL_DATA_MEMORY allows)" \
        in result.stderr
    assert len(decodes) == N
    [entry] = entries(own_cache)
    made = (entry / "images.u8").stat().st_mtime_ns

    assert cli("train", *COMMON, "--data", "folder:faces", "--steps", "6", "--out", "split").exit_code == 0
    result = cli("train", "--resume", "split", "--steps", "12", "--data", "folder:faces", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "streaming 64 images" in result.stderr
    assert len(decodes) == N  # the second run and the resume read the cache: not one image decoded again
    assert entries(own_cache) == [entry] and (entry / "images.u8").stat().st_mtime_ns == made
    assert tensors_equal(Path("straight/checkpoints/step-00000012.safetensors"),
                         Path("split/checkpoints/step-00000012.safetensors"))

    monkeypatch.delenv("GANTOOL_DATA_MEMORY")  # in memory now: the very same batches
    result = cli("train", *COMMON, "--data", "folder:faces", "--steps", "12", "--out", "memory")
    assert result.exit_code == 0 and "streaming" not in result.stderr, result.output
    assert tensors_equal(Path("straight/checkpoints/step-00000012.safetensors"),
                         Path("memory/checkpoints/step-00000012.safetensors"))


def test_gantool_evaluate_reads_the_folder_from_the_cache_its_training_made(cli, tmp_path, own_cache, decodes):
    write_folder(tmp_path / "faces", n=32)
    result = cli("train", *COMMON, "--data", "folder:faces", "--steps", "2", "--out", "run")
    assert result.exit_code == 0, result.output
    assert len(decodes) == 32
    result = cli("evaluate", "run", "--data", "folder:faces", "--features", "raw", "--metrics", "fd", "--n", "16",
                 "--out", "report.json")
    assert result.exit_code == 0, result.output
    assert len(decodes) == 32 and len(entries(own_cache)) == 1  # evaluated on the cached images: none decoded again


@pytest.mark.process
def test_two_processes_stream_their_shards_from_one_cache_entry_as_they_would_read_memory(tmp_path, own_cache):
    """`--nproc-per-node 2 --data-opt stream=true`: rank 0 decodes the folder into the cache, rank 1 reads it (one
    entry, made once), each streams its shard with its workers, and the run equals the in-memory 2-process run."""
    import subprocess
    import sys

    write_folder(tmp_path / "faces")
    gantool = [sys.executable, "-c", "from gantoolkit.cli import main; main()", "train", *COMMON, "--data",
               "folder:faces", "--steps", "4", "--nproc-per-node", "2", "--device", "cpu"]
    environment = {**os.environ, "GANTOOL_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1",
                   "GANTOOL_DATA_CACHE": str(own_cache)}
    runs = {}
    for name, extra in (("streamed", ["--data-opt", "stream=true"]), ("memory", [])):
        done = subprocess.run([*gantool, *extra, "--out", name], cwd=tmp_path, env=environment, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs[name] = done.stderr
    assert "streaming 64 images from the image cache" in runs["streamed"] and "streaming" not in runs["memory"]
    assert len(entries(own_cache)) == 1  # both runs, both ranks: one entry
    assert tensors_equal(tmp_path / "streamed/checkpoints/step-00000004.safetensors",
                         tmp_path / "memory/checkpoints/step-00000004.safetensors")


FREED_MEMORY_PROBE = """
import ctypes, sys
from gantoolkit.data.streaming import release_freed_memory
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def anon_kib():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("RssAnon"))
size = 4 * 2**20
libc.free(libc.malloc(size))  # an mmapped block freed: glibc now serves blocks of this size from its heap
pairs = [(libc.malloc(size), libc.malloc(size)) for _ in range(8)]  # each block followed by one that stays
for block, kept in pairs:
    ctypes.memset(block, 1, size)
    ctypes.memset(kept, 1, size)
for block, _ in pairs:
    libc.free(block)  # 32 MiB of holes between blocks in use: glibc keeps their pages
before = anon_kib()
if sys.argv[1] == "release":
    assert release_freed_memory()
print(before - anon_kib())
"""


@pytest.mark.process
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_streaming_gives_freed_batch_buffers_back_to_the_system(tmp_path):
    """glibc keeps freed heap pages that batch-sized buffers leave (a streamed epoch of 20,000 images grew the
    process by up to 350 MiB); StreamBatches returns them every RELEASE_EVERY batches."""
    import subprocess

    def freed_kib(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", FREED_MEMORY_PROBE, mode], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip())

    assert freed_kib("keep") < 4 * 1024  # glibc alone keeps the 32 MiB
    assert freed_kib("release") > 28 * 1024


def test_streamed_batches_release_freed_memory_every_few_batches(tmp_path, own_cache, monkeypatch):
    from gantoolkit.data import streaming

    calls = []
    monkeypatch.setattr(streaming, "release_freed_memory", lambda: calls.append(1) or True)
    streamed = load(write_folder(tmp_path / "faces", n=8), stream=True)
    batches = StreamBatches(streamed, 1, torch.device("cpu"), seed=0, workers=0)
    for _ in range(3 * streaming.RELEASE_EVERY):
        batches.next()
    assert len(calls) == 3  # every RELEASE_EVERY batches, across epochs of 8


@pytest.mark.parametrize("rank", [0, 1])
def test_streamed_batches_are_the_in_memory_batches_of_each_rank_and_resume_at_their_position(
        tmp_path, own_cache, rank):
    folder = write_folder(tmp_path / "faces", n=20)
    memory, streamed = load(folder, stream=False), load(folder, stream=True)
    assert memory.stream is None and streamed.stream is not None and streamed.stream.reason == "--data-opt stream=true"
    assert torch.equal(memory.data, streamed.data) and torch.equal(memory.labels, streamed.labels)
    processes, cpu = Processes(rank=rank, world_size=2), torch.device("cpu")
    ours = DeviceBatches(memory, 6, cpu, seed=3, processes=processes)
    theirs = StreamBatches(streamed, 6, cpu, seed=3, processes=processes, workers=0)
    for _ in range(10):  # three batches an epoch (two images dropped): several epochs
        (x, y), (sx, sy) = ours.next(), theirs.next()
        assert len(x) == 3 and torch.equal(x, sx) and torch.equal(y, sy)
    again = StreamBatches(streamed, 6, cpu, seed=3, processes=processes, workers=0)
    again.load_state_dict(theirs.state_dict())
    for _ in range(4):
        (x, y), (sx, sy) = ours.next(), again.next()
        assert torch.equal(x, sx) and torch.equal(y, sy)


def test_data_streams_above_the_memory_budget_and_a_bad_budget_is_one_line(monkeypatch):
    monkeypatch.setenv("GANTOOL_DATA_MEMORY", "1K")
    assert stream_reason(2048, None) == "2.0 KiB decoded is more than the 1.0 KiB GANTOOL_DATA_MEMORY allows"
    assert stream_reason(1024, None) is None and stream_reason(2048, False) is None
    assert stream_reason(10, True) == "--data-opt stream=true"
    monkeypatch.setenv("GANTOOL_DATA_MEMORY", "lots")
    with pytest.raises(DataError) as e:
        stream_reason(10, None)
    assert "GANTOOL_DATA_MEMORY must be a number of bytes such as 512M or 8G, got 'lots'" in str(e.value)


def test_negative_workers_is_one_line_and_nothing_is_made(cli, tmp_path):
    result = cli("train", *TINY_DCGAN, "--image-size", "8", "--steps", "1", "--workers", "-1", "--out", "run")
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("error: --workers must be between 0 and 64, got -1 (use --workers 0") and \
        "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_a_cache_whose_files_changed_is_rebuilt_and_says_so_once(tmp_path, own_cache, decodes, capsys):
    folder = write_folder(tmp_path / "faces")
    first = load(folder)
    assert len(decodes) == N and capsys.readouterr().err == ""
    save(folder / "a" / "001.png", np.full((10, 12, 3), 7, np.uint8))  # another size on disk: another key
    second = load(folder)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"note: the image cache of {folder} was made from files that have changed since (1 changed, 0 "
                     f"added, 0 removed); rebuilding it"]
    assert len(decodes) == 2 * N and len(entries(own_cache)) == 1  # the old entry is gone, the new one kept
    index = next(i for i, p in enumerate(sorted(folder.rglob("*.png"))) if p.name == "001.png")
    assert (second.data[index] == 7).all() and torch.equal(second.data[index + 1:], first.data[index + 1:])
    load(folder)
    assert capsys.readouterr().err == "" and len(decodes) == 2 * N  # said once: the next run reads the new entry

    path = folder / "a" / "001.png"
    stamp = path.stat().st_mtime_ns
    save(path, np.full((10, 12, 3), 9, np.uint8))  # the same size: only the bytes differ
    os.utime(path, ns=(stamp, stamp))  # and the same mtime, as a coarse clock can give
    third = load(folder)
    assert capsys.readouterr().err.splitlines() == [
        f"note: the image cache of {folder} was made from files that have changed since (1 rewritten, first: "
        f"a/001.png); rebuilding it"]
    assert (third.data[index] == 9).all() and len(decodes) == 3 * N


def test_a_damaged_cache_is_rebuilt_in_one_line(tmp_path, own_cache, decodes, capsys):
    folder = write_folder(tmp_path / "faces", n=8)
    first = load(folder)
    [entry] = entries(own_cache)
    images = entry / "images.u8"
    images.write_bytes(images.read_bytes()[:-5])
    capsys.readouterr()
    again = load(folder)
    assert capsys.readouterr().err.splitlines() == [
        f"note: the image cache of {folder} is damaged (images.u8 holds 1,531 bytes, not 1,536); rebuilding it"]
    assert torch.equal(again.data, first.data) and len(decodes) == 16 and images.stat().st_size == 1536


def test_unreadable_images_are_skipped_or_refused_on_a_cached_run_as_on_the_first(tmp_path, own_cache, decodes,
                                                                                 capsys):
    folder = write_folder(tmp_path / "faces", n=8)
    (folder / "a" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as e:
        load(folder)
    assert "cannot read image a/bad.png in" in str(e.value) and not entries(own_cache)  # nothing half made
    skipped = load(folder, on_bad_image="skip")
    assert len(skipped) == 8 and skipped.info.extra["skipped"] == ["a/bad.png"]
    assert "warning: skipped 1 unreadable image(s)" in capsys.readouterr().err
    count = len(decodes)
    load(folder, on_bad_image="skip")
    assert "warning: skipped 1 unreadable image(s)" in capsys.readouterr().err
    assert len(decodes) == count + 1  # only the unreadable one is tried again
    with pytest.raises(DataError) as e:
        load(folder)
    assert "cannot read image a/bad.png in" in str(e.value) and "--on-bad-image skip" in str(e.value)


def test_gantool_cache_lists_and_clears_and_the_next_run_decodes_again(cli, tmp_path, own_cache, decodes):
    folder = write_folder(tmp_path / "faces", n=8)
    load(folder)
    [entry] = entries(own_cache)
    listed = cli("cache", "ls")
    assert listed.exit_code == 0, listed.output
    assert entry.name in listed.stdout and "8 images 3x8x8" in listed.stdout and str(folder.resolve()) in listed.stdout
    assert "1 cached folder(s)" in listed.stdout and str(own_cache) in listed.stdout
    wrong = cli("cache", "clear", "nope")
    assert wrong.exit_code == 2 and wrong.stderr.splitlines() == [
        f"error: no cached folder 'nope' in {own_cache} (see `gantool cache ls` for the keys)"]
    assert entries(own_cache) == [entry]
    assert [p.name for p in own_cache.glob(".*.lock")] == [f".{entry.name}.lock"]
    cleared = cli("cache", "clear")
    assert cleared.exit_code == 0 and "removed 1 cached folder(s)" in cleared.stdout
    assert not entries(own_cache) and "no cached folders" in cli("cache", "ls").stdout
    assert list(own_cache.iterdir()) == []  # no lock file is left behind either
    load(folder)
    assert len(decodes) == 16


def test_a_lock_file_unlinked_while_a_process_waits_for_it_is_taken_again(own_cache):
    """`gantool cache clear` unlinks the lock files of keys without an entry while holding them; whoever opened the
    old file and waited must then lock the file now at the path, or two processes would both hold "the" lock."""
    import threading

    from gantoolkit.data import cache

    holding, release = threading.Event(), threading.Event()

    def waiter():
        with cache.lock("k"):
            holding.set()
            release.wait(10)

    with cache.lock("k") as held:
        assert held
        thread = threading.Thread(target=waiter)
        thread.start()
        holding.wait(0.5)
        assert not holding.is_set()  # the waiter waits on the old file
        (own_cache / ".k.lock").unlink()
    assert holding.wait(10)  # it got a lock, on the new file at the path
    with cache.lock("k", wait=False) as mine:
        assert not mine  # so nobody else holds the lock at the same time
    release.set()
    thread.join(10)
    with cache.lock("k", wait=False) as mine:
        assert mine


def test_a_run_goes_on_reading_an_entry_that_is_cleared_under_it(tmp_path, own_cache):
    from gantoolkit.data import cache

    streamed = load(write_folder(tmp_path / "faces", n=8), stream=True)
    memory = load(tmp_path / "faces", stream=False)
    ours = DeviceBatches(memory, 4, torch.device("cpu"), seed=0)
    theirs = StreamBatches(streamed, 4, torch.device("cpu"), seed=0, workers=0)
    assert torch.equal(ours.next()[0], theirs.next()[0])
    [entry] = cache.entries()
    cache.remove(entry)
    assert not entries(own_cache)
    for _ in range(3):
        assert torch.equal(ours.next()[0], theirs.next()[0])
