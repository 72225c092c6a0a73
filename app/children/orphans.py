"""No qthumb process outlives the one that started it.

Linux's ``PR_SET_PDEATHSIG`` asks the kernel to signal a process when its parent ends; it is set
by the child itself, at its start, and the child then checks that its parent is still the one
that started it (it may have died in between). The kernel ties the setting to the *thread* that
forked the child: whoever starts a child must do it from a thread that outlives the child.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGKILL, expected_parent: int | None = None) -> None:
    """Have the kernel send ``signum`` to this process when its parent ends. If the parent is
    already gone (``expected_parent`` no longer ours), exit now."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(1)  # the parent died before the setting took: nobody is left to stop us


def children_die_with_this_process() -> None:
    """Every child this process forks from now on (huey's workers and scheduler, and those it
    starts again) is killed when this process ends."""
    os.register_at_fork(after_in_child=die_with_parent)


def dies_with_us(argv: list[str]) -> list[str]:
    """``argv`` run so that it is killed when the process that starts it ends: through
    util-linux's ``setpriv --pdeathsig`` (a program such as ffmpeg cannot set it itself, and a
    ``preexec_fn`` is unsafe in a process with threads). Unchanged where setpriv is missing."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return argv
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]


def processes() -> Iterator[tuple[int, list[str]]]:
    """Every process of this machine: its pid and the fields of ``/proc/PID/stat`` after its
    command (which may hold spaces): ``[0]`` state, ``[1]`` parent pid, ``[3]`` session id."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended while we looked
        yield int(entry.name), stat.rpartition(")")[2].split()


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def qthumb_module(module: str, *args: str) -> list[str]:
    """The argv that runs one of qthumb's own modules (``"workers.on_demand.frame_server"``) in a
    new
    interpreter. ``-I`` (isolated): neither the working directory nor ``PYTHONPATH`` comes
    first on ``sys.path``, so a user's ``app/``, ``workers/`` or ``qthumb/`` folder there is
    never imported instead of qthumb's code."""
    return [sys.executable, "-I", "-m", f"qthumb.{module}", *args]
