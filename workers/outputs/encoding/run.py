"""Running an ``EncodePlan`` (mp4, webm, gif and animated WebP outputs) in a child process of
its own, ``python -I -m qthumb.workers.outputs.encoding.encode``: one runner, with a deadline
and both pipes drained as they come (a full stderr pipe would stop the child until the
deadline). Its end is told as what it was: past our deadline (transient: retried), out of
memory (its own error, or a SIGKILL we did not send: the kernel's OOM killer), ended by another
signal, or its own error."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import IO

from qthumb.app.children.orphans import dies_with_us, qthumb_module
from qthumb.app.memory import limit_child, within_what_is_left
from qthumb.workers.failures import FormatFailure, TaskFailure
from qthumb.workers.outputs.encoding.plan import EncodePlan

OUT_OF_MEMORY = ("MemoryError", "Cannot allocate memory", "malloc of size")  # Python, FFmpeg, x264
ERROR_LINES = 20  # of the encoder's error output, kept for the failure's description


def _keep_tail(stream: IO[str], tail: deque[str]) -> None:
    for line in stream:  # read as it comes: a full pipe would stop the encoder
        tail.append(line.rstrip("\n")[:2000])


def _progress(lines: Iterable[str], duration: float, progress: Callable[[float], None]) -> None:
    for line in lines:
        if line.startswith("out_time_us=") and duration > 0:
            value = line.split("=", 1)[1].strip()
            if value.isdigit():
                progress(min(1.0, int(value) / 1e6 / duration))


def run_encoder(
    plan: EncodePlan, progress: Callable[[float], None], timeout: float, what: str
) -> None:
    """Make ``plan.out`` in a child process; its progress lines drive ``progress`` (0-1).
    Fails with the child's last error line when it fails or passes ``timeout`` seconds."""
    run_child(
        "workers.outputs.encoding.encode", plan.to_json(), plan.duration, progress, timeout, what
    )


def run_child(
    module: str,
    plan: str,
    duration: float,
    progress: Callable[[float], None],
    timeout: float,
    what: str,
    failure: type[FormatFailure] | type[TaskFailure] = FormatFailure,
) -> None:
    """Run qthumb's ``module`` on the JSON ``plan`` in a child process (an encoder: ``main``
    prints ``out_time_us=…`` lines up to ``duration`` seconds, and one line saying what failed
    on stderr), failing as ``failure`` naming ``what``."""
    proc = subprocess.Popen(
        dies_with_us(within_what_is_left(qthumb_module(module, plan))),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    limit_child(proc.pid)  # only where prlimit is missing
    assert proc.stdout is not None and proc.stderr is not None
    tail: deque[str] = deque(maxlen=ERROR_LINES)
    drain = threading.Thread(target=_keep_tail, args=(proc.stderr, tail), daemon=True)
    drain.start()
    late = threading.Event()

    def past_deadline() -> None:
        late.set()
        proc.kill()

    timer = threading.Timer(timeout, past_deadline)
    timer.start()
    try:
        _progress(proc.stdout, duration, progress)
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
        proc.stdout.close()  # the pipes are ours to close: one file descriptor each a run
        proc.stderr.close()
    if code == 0:
        return
    if late.is_set():  # our own deadline: the one failure another attempt may not meet
        raise failure(
            f"could not make the {what}: timed out after {timeout:g} s (QTHUMB_VIDEO_TIMEOUT)",
            transient=True,
        )
    lines = [line for line in tail if line.strip()]
    if code == -signal.SIGKILL or any(sign in line for line in lines for sign in OUT_OF_MEMORY):
        # Past QTHUMB_WORKER_MEMORY_LIMIT, which the child inherits; a SIGKILL we did not send
        # is the kernel's OOM killer (nothing else here kills an encoder)
        raise MemoryError()
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        last = f" ({lines[-1]})" if lines else ""
        raise failure(f"could not make the {what}: the encoder was ended by {name}{last}")
    reason = " | ".join(lines[-3:]) or f"exit code {code}"
    raise failure(f"could not make the {what}: {reason}")
