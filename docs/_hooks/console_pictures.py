"""mkdocs hook: the pictures on the console page, taken at every build by headless Chromium
(Debian's, as the test suite's) from a real ``qthumb serve``: the playground, a finished task's
page with its seek-bar preview under the pointer, and the task list. Never stale: the console
they show is this code's. Written to ``docs/images/made/`` beside the outputs' pictures (that
hook runs first and empties the folder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent.parent / "images" / "made"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KEY = "docs-pictures-key-0123"
CLIP = "testsrc2=s=640x360:r=25:d=20"
DEADLINE = 120.0  # seconds for the whole hook: a build never hangs on it


def _serve(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``qthumb serve`` on a free loopback port, in its own process group; and its URL."""
    qthumb = Path(sys.executable).parent / "qthumb"
    port_file = work / "port"
    env = {
        **os.environ,
        "QTHUMB_DATA_DIR": str(work / "data"),
        "QTHUMB_API_KEYS": KEY,
        "QTHUMB_LOCAL_SOURCE_DIRS": str(work / "media"),
    }
    proc = subprocess.Popen(
        [
            str(qthumb),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--workers",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    until = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > until:
            raise RuntimeError("console pictures: qthumb serve did not start")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port_file.read_text().strip()}"


def take_pictures() -> None:
    from playwright.sync_api import sync_playwright

    timeout_ms = int(DEADLINE * 1000 / 4)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "media").mkdir()
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                CLIP,
                "-pix_fmt",
                "yuv420p",
                "-g",
                "25",
                str(work / "media" / "clip.mp4"),
            ],
            check=True,
            timeout=60,
        )
        proc, base = _serve(work)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport={"width": 1000, "height": 760})
                    page.set_default_timeout(timeout_ms)
                    page.goto(f"{base}/ui/")
                    page.get_by_label("API key").fill(KEY)
                    page.get_by_role("button", name="Sign in").click()
                    page.wait_for_url(f"{base}/ui/")
                    page.get_by_role("link", name="Playground", exact=True).click()
                    page.get_by_label("interval (s)").fill("2")
                    page.get_by_label("columns").fill("5")
                    page.wait_for_function(
                        "() => document.getElementById('curl').textContent.includes("
                        "'\"interval\":2')"
                    )
                    page.screenshot(path=str(FOLDER / "console-playground.png"))
                    page.get_by_role("button", name="Run").click()
                    page.wait_for_selector("#task-state[data-status=completed]")
                    page.wait_for_function(
                        "() => document.querySelector('.player').dataset.cues === '10'"
                    )
                    bar = page.locator(".seek")
                    bar.scroll_into_view_if_needed()
                    box = bar.bounding_box()
                    assert box is not None
                    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2)
                    page.locator(".preview").wait_for(state="visible")
                    page.screenshot(path=str(FOLDER / "console-task.png"))
                    page.goto(f"{base}/ui/")
                    page.wait_for_selector("tr.state-completed")
                    page.screenshot(path=str(FOLDER / "console-tasks.png"))
                finally:
                    browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def on_pre_build(config: Any) -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    take_pictures()
