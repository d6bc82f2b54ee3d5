"""Real-browser tests: `panel serve app.py` driven by Playwright with Debian's Chromium.

`.ci/install` installs both (apt `chromium`, pip `playwright`); set WANDER_CHROMIUM to use
another Chromium binary.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the [ui-test] extra")

from wander_gui import backend  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("WANDER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is installed by .ci/install (apt chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    log = open(ROOT / ".pytest_cache" / "panel_serve.log", "w") if (ROOT / ".pytest_cache").exists() else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", "app.py", "--port", str(port),
                             "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/app"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("panel serve did not start")
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Session:
    """One browser tab on the app, recording console errors and every non-local request."""

    def __init__(self, browser, url):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.errors, self.external = [], []
        origin = url.rsplit("/", 1)[0]
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed load {r.url}: {r.failure}"))
        self.page.on("request", lambda r: None if r.url.startswith((origin, "blob:", "data:"))
                     else self.external.append(r.url))
        self.page.goto(url)
        self.page.get_by_text("WANDER moiré lab").first.wait_for(timeout=30_000)

    def text(self, pattern, timeout=30_000, flags=0):
        loc = self.page.get_by_text(re.compile(pattern, flags)).first
        loc.wait_for(timeout=timeout)
        return loc.inner_text()

    def click(self, name):
        self.page.get_by_role("button", name=name, exact=True).click()

    def tab(self, name):
        self.page.locator(".bk-tab", has_text=name).first.click()

    def set_angle(self, degrees):
        """Click the angle slider's track where ``degrees`` lies (bounds 0.1–59.9°)."""
        track = self.page.locator(".noUi-target").first
        box = track.bounding_box()
        frac = (degrees - 0.1) / (59.9 - 0.1)
        self.page.mouse.click(box["x"] + frac * box["width"], box["y"] + box["height"] / 2)

    def set_input(self, label, value):
        box = self.page.get_by_label(label).first if self.page.get_by_label(label).count() else None
        if box is None:
            box = self.page.locator(f"xpath=//label[contains(., '{label}')]/following::input[1]").first
        box.fill(str(value))
        box.press("Enter")


def test_page_loads_offline_without_console_errors(server, browser):
    s = Session(browser, server)
    s.text(r"θ = 21\.787°.*42 atoms")
    time.sleep(1.0)
    assert s.errors == []
    assert s.external == [], "every script, stylesheet and font must be served by the app itself"
    s.page.close()


def test_slider_build_relax_bands(server, browser):
    s = Session(browser, server)
    s.set_angle(13.2)
    s.text(r"θ = 13\.17\d°.*114 atoms")
    s.click("Build")
    s.text(r"Built 114 atoms")
    assert s.page.locator("canvas").count() > 0  # the structure plots rendered
    available = backend.model_status("MoS2").available
    s.set_input("Steps", 3)
    s.click("Relax")
    if available:
        s.text(r"Relaxation (converged|not converged) after \d+ steps", timeout=120_000)
        s.tab("Relaxation")
        s.page.get_by_text("Tile maps").first.wait_for(timeout=30_000)  # the tab rendered (dynamic tabs)
        time.sleep(2.0)
        assert s.page.locator("canvas").count() > 0  # maps and traces drawn
        s.click("Bands")
        s.text(r"Bands: (gap [\d.]+ eV|no gap)", timeout=180_000)
        s.tab("Bands")
        time.sleep(1.0)
        assert s.page.locator("canvas").count() > 0
    else:
        s.text(r"No trained model yet")
    time.sleep(0.5)
    assert s.errors == []
    s.page.close()


def test_two_sessions_keep_separate_state(server, browser):
    a = Session(browser, server)
    b = Session(browser, server)
    a.set_angle(13.2)
    a.text(r"114 atoms")
    a.click("Build")
    a.text(r"Built 114 atoms")
    # the other tab still has its own defaults and nothing built
    b.text(r"θ = 21\.787°.*42 atoms")
    assert b.page.get_by_text("Press Build to create the cell.").count() == 1
    b.click("Build")
    b.text(r"Built 42 atoms")
    assert a.page.get_by_text(re.compile(r"Built 42 atoms")).count() == 0
    assert a.page.get_by_text(re.compile(r"Built 114 atoms")).count() == 1
    assert a.errors == [] and b.errors == []
    a.page.close()
    b.page.close()


def test_bad_input_shows_error_and_server_keeps_running(server, browser):
    s = Session(browser, server)
    s.set_input("Max atoms", 42)
    s.set_angle(3.0)  # needs ~1400 atoms: nothing within a 42-atom budget
    s.text(r"Error: .*(no commensurate|atom)", flags=re.I)
    s.click("Build")
    s.text(r"Error: no commensurate cell for the current inputs")
    s.page.close()
    again = Session(browser, server)  # the server still serves new sessions
    again.text(r"42 atoms")
    again.page.close()
