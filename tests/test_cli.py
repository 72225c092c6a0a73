"""The command line a newcomer meets: `qthumb --help`, every subcommand's `--help` (each option
with its help and default), `--version`, and the start banner."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import FPS, make_qthumb
from tests.test_thumbnail import frame_index

COMMANDS = ["serve", "api", "worker", "thumbnail", "thumbnails"]


def qthumb(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


def test_help_says_what_each_command_is_for():
    text = qthumb("--help")
    assert "speaks the Qencode API" in text
    assert "import arrow" not in text  # no internal design remarks
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", text, re.M), command


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_and_a_default(command: str):
    text = qthumb(command, "--help").split("options:", 1)[1]
    options = re.findall(r"^  (--[a-z-]+)", text, re.M)
    assert options, text
    for name in options:
        if name == "--help":
            continue
        # the help follows the option (on its line and the next ones) and names the default
        start = re.search(rf"^  {re.escape(name)}\b", text, re.M)
        assert start, name
        block = text[start.start() + 2 :].split("\n  -", 1)[0]
        words = block.split(None, 2)
        assert len(words) == 3 and words[2].strip(), (command, name, block)
        assert "default" in block or "required" in block, (command, name, block)


def test_version():
    assert re.fullmatch(r"qthumb \d+\.\d+\.\d+\S*\n", qthumb("--version"))


def test_serve_prints_a_short_banner(tmp_path: Path, clips: Path):
    server = make_qthumb(tmp_path, clips)
    try:
        server.serve(workers=1)
        log = (server.data_dir / "serve.log").read_text()
    finally:
        server.stop()
    banner = log[log.index("qthumb ") :].splitlines()[:9]
    text = "\n".join(banner)
    assert f"API on http://127.0.0.1:{server.port}" in banner[0]
    assert "key:" in text and "data:" in text and str(server.data_dir) in text
    assert f"console: http://127.0.0.1:{server.port}/ui/" in banner[1]
    assert "tasks:   SQLite" in text and "queue:   SQLite" in text and "files:   folder" in text
    assert "workers: 1 processes" in text and "stop:    Ctrl-C" in text


def test_offline_commands_also_run_through_app_cli(clips: Path, tmp_path: Path):
    """``python -m app.cli thumbnail …`` (what the console script was before) starts the
    offline command in a fresh interpreter, since ``app`` does not import ``workers``."""
    out = tmp_path / "f.png"
    subprocess.run([sys.executable, "-m", "app.cli", "thumbnail", str(clips / "index.mp4"),
                    "--time", "1s", "-o", str(out)], check=True, timeout=60)  # fmt: skip
    with Image.open(out) as image:
        assert abs(frame_index(image) - FPS) < 0.5
