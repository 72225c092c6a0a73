"""An encoder child's end is told as what it was: past qthumb's own deadline (the one failure
retried as transient), a SIGKILL qthumb did not send (the kernel's OOM killer: memory), or
another signal (named, not retried) - never "timed out" for all three."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from qthumb.app.process.pool import child_pids
from qthumb.app.qencode.query import parse_query
from qthumb.workers.failures import FormatFailure
from qthumb.workers.media.probe import probe
from qthumb.workers.outputs.encoding.plan import EncodePlan
from qthumb.workers.outputs.encoding.run import run_encoder
from qthumb.workers.outputs.video import video_command
from tests.conftest import ffmpeg
from tests.test_orphans import command_of
from tests.waiting import eventually


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("encode") / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=30", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path


def plan(source: Path, out: Path) -> EncodePlan:
    spec = parse_query({"source": "x", "format": [{"output": "webm"}]}).formats[0]
    return video_command(source, out / "video.webm", spec, probe(source), False).encode


def signal_the_encoder(signum: int) -> tuple[threading.Thread, Callable[[float], None]]:
    """Sends ``signum`` to this process's encoder child (none of another test process's) once
    it is encoding: when the encoder's first progress arrives (the callback returned here)."""
    encoding = threading.Event()

    def find_and_signal() -> None:
        def encoder() -> int | None:
            found = [p for p in child_pids(os.getpid())
                     if "qthumb.workers.outputs.encoding.encode" in command_of(p)]  # fmt: skip
            return found[0] if found else None

        pid = eventually(encoder, 30, every=0.01)
        assert encoding.wait(30), "the encoder reported no progress within 30 s"
        os.kill(pid, signum)

    thread = threading.Thread(target=find_and_signal, daemon=True)
    thread.start()
    return thread, lambda _: encoding.set()


def test_a_signal_is_named(long_clip: Path, tmp_path: Path):
    killer, progress = signal_the_encoder(signal.SIGTERM)
    with pytest.raises(FormatFailure) as ended:
        run_encoder(plan(long_clip, tmp_path), progress, 120, "webm")
    killer.join()
    assert "the encoder was ended by SIGTERM" in ended.value.description
    assert not ended.value.transient and "timed out" not in ended.value.description


def test_a_sigkill_qthumb_did_not_send_is_memory(long_clip: Path, tmp_path: Path):
    killer, progress = signal_the_encoder(signal.SIGKILL)
    with pytest.raises(MemoryError):
        run_encoder(plan(long_clip, tmp_path), progress, 120, "webm")
    killer.join()


def test_only_a_real_timeout_is_transient(long_clip: Path, tmp_path: Path):
    with pytest.raises(FormatFailure) as ended:
        run_encoder(plan(long_clip, tmp_path), lambda _: None, 0.5, "webm")
    assert ended.value.transient
    assert "timed out after 0.5 s (QTHUMB_VIDEO_TIMEOUT)" in ended.value.description
