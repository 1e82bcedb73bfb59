"""The demo served for real (`python demo/app.py RUN`, a subprocess) and driven in headless Chromium, and through
Gradio's API with values the page would never send.

The model is a conditional DCGAN trained for 600 steps on 16x16 digits (about 20 s on one idle core), so the
screenshots show digits. The browser tests always write their screenshots to their temporary folders; with
GANTOOL_UPDATE_SCREENSHOT=1 they also copy them to docs/demo.png (desktop) and docs/demo-phone.png (390×844), the
README's pictures.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import train_once

pytestmark = pytest.mark.process  # every test here starts processes

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
#: generous: the machine may be shared and slow; nothing here asserts on time
WAIT_MS = 300_000
DIGITS16 = ["--data", "digits", "--image-size", "16", "--arch", "dcgan", "--arch-opt", "ngf=32", "--arch-opt",
            "ndf=32", "--loss", "bce", "--cond", "onehot", "--latent-dim", "32", "--batch-size", "64", "--ema", "0.99",
            "--steps", "600", "--log-every", "200", "--sample-every", "600", "--checkpoint-every", "600"]


@pytest.fixture(scope="session")
def digits16(tmp_path_factory) -> Path:
    """A conditional generator that draws recognisable 16x16 digits, trained once per session."""
    out = tmp_path_factory.mktemp("digits16") / "run"
    train_once(*DIGITS16, "--out", out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(digits16, tmp_path_factory):
    """`python demo/app.py RUN --port P` in a subprocess; yields its URL once it answers."""
    work = tmp_path_factory.mktemp("server")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(work / "gradio"),
           "OMP_NUM_THREADS": "1", "GANTOOL_DISABLE_PLUGIN_AUTOLOAD": "1"}
    log = (work / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "demo/app.py", str(digits16), "--port", str(port)], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + WAIT_MS / 1000
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the demo exited with {process.returncode}:\n{(work / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the demo did not answer on {url}:\n{(work / 'server.log').read_text()}")
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=60)
        log.close()
    text = (work / "server.log").read_text()
    assert "Running on local URL:  http://127.0.0.1:" in text
    assert "Traceback" not in text, text  # no request, however bad, puts a traceback in the server's log
    assert "share=True" not in text and "public link" not in text, text  # we never share, nor suggest it
    assert process.returncode == 0, text  # SIGTERM stops it as Ctrl-C does
    left = [str(f) for f in (work / "gradio").rglob("*") if f.is_file()]
    assert not left, left  # Gradio's temporary files went with the demo


def picture_src(page) -> str:
    return page.get_attribute("#picture img", "src") or ""


def wait_for_new_picture(page, old: str) -> str:
    page.wait_for_function("(old) => { const i = document.querySelector('#picture img');"
                           " return i && i.src && i.src !== old; }", arg=old, timeout=WAIT_MS)
    return picture_src(page)


def pixels(page, src: str) -> np.ndarray:
    response = page.request.get(src)
    assert response.ok, src
    return np.asarray(Image.open(io.BytesIO(response.body())))


@pytest.mark.browser
def test_the_page_in_headless_chromium(server, tmp_path):
    """The page loads, an image appears, a direction slider and the class selector change it, the download is the
    generator's own pixels, nothing is fetched from another host; a screenshot is saved."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    page_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
            page.set_default_timeout(WAIT_MS)
            page.on("request", lambda r: outside.append(r.url)
                    if not r.url.startswith((server, "data:", "blob:")) else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.goto(server, timeout=WAIT_MS)
            page.wait_for_selector("#picture img")
            page.wait_for_function("() => document.title.includes('gantoolkit demo')")
            first_src = picture_src(page)
            first = pixels(page, first_src)
            assert first.shape[0] >= 256 and first.std() > 10  # an enlarged digit, not a blank
            assert "seed 0 · class 0" in page.inner_text("#status")

            page.locator("#random").click()  # a fresh seed redraws the picture; typing 0 back draws the first one
            random_src = wait_for_new_picture(page, first_src)
            assert page.locator("#seed input").input_value() != "0"
            page.locator("#seed input").fill("0")
            wait_for_new_picture(page, random_src)
            page.wait_for_function("() => document.querySelector('#status').innerText.startsWith('seed 0 ')")
            assert np.array_equal(pixels(page, picture_src(page)), first)

            page.locator("#control-0 input[type=range]").fill("4")
            moved_src = wait_for_new_picture(page, first_src)
            moved = pixels(page, moved_src)
            assert moved.shape == first.shape and np.abs(moved.astype(int) - first.astype(int)).mean() > 1

            page.locator("#class input[role=combobox]").click()
            page.get_by_role("option", name="5", exact=True).click()
            five_src = wait_for_new_picture(page, moved_src)
            assert np.abs(pixels(page, five_src).astype(int) - moved.astype(int)).mean() > 1
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('class 5')")

            page.locator("#grid input[type=range]").fill("4")
            wait_for_new_picture(page, five_src)
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('4×4 grid')")
            with page.expect_download() as download:
                page.locator("#download").click()
            native = np.asarray(Image.open(download.value.path()))
            assert native.shape[:2] == (4 * 16 + 5 * 2, 4 * 16 + 5 * 2)  # 4x4 cells of 16 px, 2-px gaps

            shown = picture_src(page)
            page.locator("#reset").click()  # the directions back at rest: the grid of fives the seed names
            wait_for_new_picture(page, shown)
            assert page.locator("#control-0 input[type=range]").input_value() == "0"
            page.get_by_text("Checkpoint", exact=True).click()
            page.wait_for_selector("#summary table")
            summary = page.inner_text("#summary")
            assert "dcgan" in summary and "onehot" in summary and "600" in summary
            shot = tmp_path / "demo.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not outside, f"the page asked other hosts for {outside}"
    assert not page_errors, page_errors
    assert Image.open(shot).size[0] == 1200
    keep(shot, "demo.png")


def keep(shot: Path, name: str) -> None:
    """With GANTOOL_UPDATE_SCREENSHOT=1, the screenshot becomes the README's docs/NAME."""
    if os.environ.get("GANTOOL_UPDATE_SCREENSHOT", "") not in ("", "0"):
        shutil.copyfile(shot, ROOT / "docs" / name)


def in_viewport(page, selector: str) -> bool:
    """Whether the whole of the element is inside the window as it is scrolled now."""
    return page.evaluate("(s) => { const r = document.querySelector(s).getBoundingClientRect();"
                         " return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight"
                         " && r.right <= innerWidth; }", selector)


@pytest.mark.browser
def test_on_a_phone_the_picture_comes_first_and_stays_in_view(server, tmp_path):
    """At 390×844 the picture is in the first viewport when the page loads, and still is after scrolling down to
    a direction slider and moving it; the page has no sideways scroll; the interpolation strip is as wide as the
    screen; every picture has alt text; the page says what to do and shows the run's name, not the server's path."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page.set_default_timeout(WAIT_MS)
            page.goto(server, timeout=WAIT_MS)
            page.wait_for_function("() => { const i = document.querySelector('#picture img');"
                                   " return i && i.complete && i.naturalWidth > 0; }")
            assert in_viewport(page, "#picture img")
            intro = page.inner_text("#intro")
            assert "To explore it, type a seed or press Random" in intro and "/run/" not in intro.replace(" ", "")
            assert page.get_attribute("#picture img", "alt") == "the generated picture for the current settings"
            assert "sefa0 from -5 (left) to 5 (right)" in (page.get_attribute("#preview-0 img", "alt") or "")
            first = picture_src(page)
            slider = page.locator("#control-4 input[type=range]")
            slider.scroll_into_view_if_needed()
            assert page.evaluate("window.scrollY") > 300  # the controls scrolled under the picture
            slider.fill("4")
            wait_for_new_picture(page, first)
            page.wait_for_function("() => { const i = document.querySelector('#picture img');"
                                   " return i && i.complete && i.naturalWidth > 0; }")
            assert in_viewport(page, "#picture img")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            shot = tmp_path / "demo-phone.png"
            page.screenshot(path=str(shot))
            page.get_by_text("Interpolation", exact=True).click()
            page.locator("#interpolate").click()
            page.wait_for_function("() => { const i = document.querySelector('#strip img');"
                                   " return i && i.complete && i.naturalWidth > 0; }")
            strip = page.locator("#strip img").bounding_box()
            assert strip is not None and strip["width"] >= 0.75 * 390  # the screen's width less margins
            assert strip["width"] / 8 >= 35  # each of the 8 frames at least 35 px across
        finally:
            browser.close()
    assert Image.open(shot).size == (390, 844)
    keep(shot, "demo-phone.png")


def test_api_calls_with_bad_values_get_an_error_message_and_the_server_stays_up(server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    rest = [0.0] * 5  # the five SeFa sliders
    image, download, status = client.predict(3, "7", 0, 2, *rest, api_name="/render")
    assert Image.open(image).size[0] >= 256 and Image.open(download).size == (2 * 16 + 3 * 2,) * 2
    assert status.startswith("seed 3 · class 7 · 2×2 grid")
    bad = [
        ((3, "7", 0.01, 1, *rest), r"truncation must be 0 \(off\) or between 0\.05 and 3"),
        ((-4, "7", 0, 1, *rest), "seed must be a whole number between 0 and 9007199254740991, got -4"),
        (("abc", "7", 0, 1, *rest), "seed must be a whole number between 0 and 9007199254740991, got 'abc'"),
        ((3, "seven", 0, 1, *rest), "unknown class 'seven'"),
        ((3, "7", 0, 40, *rest), "grid size must be a whole number between 1 and 8, got 40"),
        ((3, "7", None, 1, *rest), "truncation must be a number, got None"),
        ((3, "7", 0, 1, 80.0, 0, 0, 0, 0), "sefa0 must be between -5 and 5, got 80.0"),
        ((3, "7", 0, 1, [1], 0, 0, 0, 0), r"sefa0 needs a number between -5 and 5, got \[1\]"),
    ]
    for args, message in bad:
        with pytest.raises(AppError, match=message):
            client.predict(*args, api_name="/render")
    with pytest.raises(AppError, match=r"frames must be a whole number between 2 and 16, got 99"):
        client.predict(3, "7", 0, 1, 5, 99, False, *rest, api_name="/interpolate")
    strip, note = client.predict(3, "7", 0, 1, 5, 4, True, *rest, api_name="/interpolate")
    assert Image.open(strip).size[0] > 3 * Image.open(strip).size[1] and note.startswith("slerp from seed 3 to seed 5")
    with pytest.raises(ValueError, match="more_of"):  # started without --classifier: no such endpoint
        client.predict(3, "7", 0, 1, "1", 10, *rest, api_name="/more_of")
    assert client.predict(4, "1", 0, 1, *rest, api_name="/render")[2].startswith("seed 4 · class 1")


def test_no_file_is_served_but_what_the_demo_made_and_uploads_are_refused(server, digits16):
    import httpx

    upload = httpx.post(f"{server}gradio_api/upload", files={"files": ("a.txt", b"hello")}, timeout=60)
    assert upload.status_code == 413
    for path in ("/etc/passwd", str(next((digits16 / "checkpoints").glob("*.safetensors"))), str(ROOT / "README.md")):
        request = urllib.request.Request(f"{server}gradio_api/file={path}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code in (403, 404)
