"""The command line a newcomer meets: `qthumb --help`, every subcommand's `--help` (each option
with its help and default), `--version`, and the start banner."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from PIL import Image

from qthumb.app.children.orphans import qthumb_module
from tests.conftest import FPS, eventually, make_qthumb
from tests.test_offline import QTHUMB
from tests.test_thumbnail import frame_index

COMMANDS = ["serve", "api", "worker", "thumbnail", "thumbnails"]


def qthumb(*args: str) -> str:
    done = subprocess.run(
        qthumb_module("app.process.cli", *args),
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
    banner = log[log.index("qthumb ") :].splitlines()[:10]
    text = "\n".join(banner)
    assert f"API on http://127.0.0.1:{server.port}" in banner[0]
    assert "key:" in text and "data:" in text and str(server.data_dir) in text
    assert f"console: http://127.0.0.1:{server.port}/ui/" in banner[1]
    assert "tasks:   SQLite" in text and "queue:   SQLite" in text and "files:   folder" in text
    assert "workers: 1 processes, and 1 for keys below their share" in text
    assert "stop:    Ctrl-C" in text
    # the test settings turn control on, as make run does: the banner says so
    assert "control: on: /_qthumb/ reset and faults, per API key (no admin key)" in text


def test_offline_commands_also_run_through_app_cli(clips: Path, tmp_path: Path):
    """``python -m app.process.cli thumbnail …`` (what the console script was before) starts the
    offline command in a fresh interpreter, since ``app`` does not import ``workers``."""
    out = tmp_path / "f.png"
    subprocess.run(qthumb_module("app.process.cli", "thumbnail", str(clips / "index.mp4"),
                    "--time", "1s", "-o", str(out)), check=True, timeout=60)  # fmt: skip
    with Image.open(out) as image:
        assert abs(frame_index(image) - FPS) < 0.5


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(tmp_path: Path, clips: Path):
    """Ctrl-C at a terminal reaches the whole process group. The first waits for a request
    still in flight (here a body that never comes); the second stops everything at once, in
    one plain line rather than the cancelled lifespan's traceback."""
    server = make_qthumb(tmp_path, clips)
    try:
        server.serve(workers=1)
        proc = server.procs[0]
        with socket.create_connection(("127.0.0.1", server.port or 0), timeout=5) as stuck:
            stuck.sendall(b"POST /v1/access_token HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 100\r\n\r\napi_key=")  # fmt: skip
            # the server has read it once a later request on another connection is answered
            assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
            os.killpg(proc.pid, signal.SIGINT)
            eventually(lambda: "Waiting for connections to close" in server.logs(), 10,
                     server.logs)  # fmt: skip
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
        eventually(lambda: not _group_alive(proc.pid), 30, lambda: "the worker pool outlived it")
        log = server.logs()
    finally:
        server.stop()
    assert "second Ctrl-C: a request in flight was cut off" in log
    assert "second Ctrl-C: stopped at once" in log
    assert "Traceback" not in log, log[-3000:]
    assert "starting it again" not in log  # the pool was stopping, not crashed


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_sigterm_just_after_the_start_stops_serve(tmp_path: Path, clips: Path):
    """``docker stop`` right after ``docker start``: the signal lands before uvicorn has taken
    the signals over (the port is already bound). It once did nothing and ``serve`` ran on
    until SIGKILL, 3 starts in 8 here; five starts give that no place to hide."""
    server = make_qthumb(tmp_path, clips)
    try:
        for k in range(5):
            port_file = tmp_path / f"port{k}"
            proc = server.start("serve", "--port", "0", "--port-file", str(port_file),
                                "--workers", "1")  # fmt: skip
            eventually(port_file.exists, 30, server.logs)
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
            eventually(lambda p=proc.pid: not _group_alive(p), 20, lambda: "the pool outlived it")
    finally:
        server.stop()
    assert "starting it again" not in server.logs()


@pytest.mark.parametrize(
    ("command", "env", "said"),
    [
        (["serve"], {"QTHUMB_WORKERS": "0"}, "QTHUMB_WORKERS: Input should be greater than"),
        (["serve", "--workers", "0"], {}, "--workers: Input should be greater than"),
        (["api"], {"QTHUMB_PORT": "99999"}, "QTHUMB_PORT: Input should be less than"),
        (["api"], {"QTHUMB_API_KEYS": "test-key-0123456789,secret"},
         "QTHUMB_API_KEYS: key 2 of 2 could never be used"),
        (["worker"], {"QTHUMB_ALLOWED_NETWORKS": "10.0.0.0/33"}, "QTHUMB_ALLOWED_NETWORKS: '10."),
        (["thumbnail", "x.mp4", "-o", "x.png"], {"QTHUMB_MAX_SOURCE_PIXELS": "many"},
         "QTHUMB_MAX_SOURCE_PIXELS: Input should be a valid integer"),
        (["api", "--port", "0"], {"QTHUMB_PROFILES": "profiles.json"},
         "QTHUMB_PROFILES profiles.json: profile 'web': query.format[0].output: unknown output"),
    ],
)  # fmt: skip
def test_a_setting_that_cannot_be_used_is_one_line_and_exit_2(
    command: list[str], env: dict[str, str], said: str, tmp_path: Path
):
    """Every command reads its settings first; a value pydantic refuses is named by its
    variable (or option) in one line, never a traceback, and a refused key is not echoed."""
    (tmp_path / "x.mp4").touch()  # the offline command looks for its source first
    (tmp_path / "profiles.json").write_text('{"web": [{"output": "nope"}]}')
    done = subprocess.run(
        [QTHUMB, *command], cwd=tmp_path,
        env={**os.environ, "QTHUMB_DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"qthumb: {said}"), done.stderr
    assert "Traceback" not in done.stderr and "secret" not in done.stderr
