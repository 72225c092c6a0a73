"""Waiting in tests: one helper, ``eventually``, for everything a test waits for (a task to end,
a port to listen, a file to go). A test that must show something did *not* happen waits for the
event that proves it instead of sleeping."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None],
    timeout: float = 30.0,
    why: Callable[[], str] = lambda: "",
    every: float = 0.05,
) -> T:
    """Poll ``check`` until it gives something truthy and return that; fail with ``why()``
    after ``timeout`` seconds. The suite's one way to wait for something to happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(why() or f"not within {timeout:g} s: {check}")
        time.sleep(every)


def accepts(port: int) -> bool:
    """Whether something accepts connections on loopback ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def listens(proc: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    """True once ``port`` accepts; False if ``proc`` exited first (its port was taken, say) or
    did not listen within ``timeout`` (then it is killed): for servers started on a port
    picked before they bind it, which the caller tries again on another."""
    try:
        state = eventually(lambda: "exited" if proc.poll() is not None else accepts(port), timeout)
    except AssertionError:
        state = "late"
    if state is True:
        return True
    proc.kill()
    proc.wait()
    return False
