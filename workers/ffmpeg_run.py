"""Running ffmpeg's command line (mp4, webm, gif and animated WebP outputs): which ffmpeg, the
argv conventions every command shares, and one runner.

The ffmpeg is ``QTHUMB_FFMPEG`` when set, else ``ffmpeg`` on ``PATH``, else the static build
that imageio-ffmpeg ships in its wheel (``pip install 'qthumb[ffmpeg]'``, what the container
image uses: Debian's ffmpeg package and what it pulls in weigh ~550 MB). The argv builders stay
pure and name ``ffmpeg``; the runner puts the located executable in its place."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import IO, Any

import ffmpeg  # ffmpeg-python

from qthumb.app.orphans import dies_with_us
from qthumb.workers.failures import FormatFailure
from qthumb.workers.probe import SAFE_DEMUXERS

ERROR_LINES = 20  # of ffmpeg's error output, kept for the failure's description


@cache
def ffmpeg_executable(configured: str = "") -> str:
    """The ffmpeg to run: ``configured`` (QTHUMB_FFMPEG), ``ffmpeg`` on PATH, or
    imageio-ffmpeg's own build. A format that needs one fails with this when none is found."""
    if configured:
        return configured
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        raise FormatFailure(
            "no ffmpeg to make this output: install ffmpeg, or qthumb[ffmpeg] "
            "(imageio-ffmpeg), or set QTHUMB_FFMPEG"
        ) from None
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def safe_input(source: Path, start: float, max_pixels: int | None = None) -> Any:
    """``ffmpeg.input`` of a local source, from ``start`` seconds (``-ss`` before ``-i``), with
    the decoder's rules: the file protocol and single-file demuxers only, and no frame over
    ``max_pixels`` (QTHUMB_MAX_SOURCE_PIXELS; ffmpeg skips such frames, never allocates them)."""
    args: dict[str, Any] = {"protocol_whitelist": "file", "format_whitelist": SAFE_DEMUXERS}
    if max_pixels is not None:
        args["max_pixels"] = str(max_pixels)
    if start:
        args["ss"] = f"{start:.3f}"
    return ffmpeg.input(str(source), **args)


def runner_argv(output: Any) -> list[str]:
    """The argv of an ffmpeg-python output, with what ``run_ffmpeg`` needs: progress on
    stdout, no stdin, errors only. Global options go before the inputs: trailing ones are
    ignored by ffmpeg."""
    compiled: list[str] = output.compile()
    return [compiled[0], "-nostdin", "-hide_banner", "-loglevel", "error", "-progress",
            "pipe:1", "-y", *compiled[1:]]  # fmt: skip


def _keep_tail(stream: IO[str], tail: deque[str]) -> None:
    for line in stream:  # read as it comes: a full pipe would stop ffmpeg until the timeout
        tail.append(line.rstrip("\n")[:2000])


def _progress(lines: Iterable[str], duration: float, progress: Callable[[float], None]) -> None:
    for line in lines:
        if line.startswith("out_time_us=") and duration > 0:
            value = line.split("=", 1)[1].strip()
            if value.isdigit():
                progress(min(1.0, int(value) / 1e6 / duration))


def run_ffmpeg(
    argv: list[str],
    duration: float,
    progress: Callable[[float], None],
    timeout: float,
    executable: str = "",
) -> None:
    """Run one ffmpeg command (``argv[0]`` is replaced by ``ffmpeg_executable(executable)``);
    its ``-progress`` output drives ``progress`` (0-1) and its error output is drained as it
    comes. Fails with the command's last error lines when ffmpeg fails or passes ``timeout``
    seconds."""
    proc = subprocess.Popen(
        dies_with_us([ffmpeg_executable(executable), *argv[1:]]),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    assert proc.stdout is not None and proc.stderr is not None
    tail: deque[str] = deque(maxlen=ERROR_LINES)
    drain = threading.Thread(target=_keep_tail, args=(proc.stderr, tail), daemon=True)
    drain.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _progress(proc.stdout, duration, progress)
        code = proc.wait()
        drain.join(timeout=5)
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0:
        lines = [line for line in tail if line.strip()]
        tail_text = " | ".join(lines[-3:]) or f"exit code {code}"
        reason = "timed out" if code == -9 else tail_text
        raise FormatFailure(f"ffmpeg could not make the {argv[-1].rsplit('.', 1)[-1]}: {reason}")
