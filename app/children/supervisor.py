"""One supervisor a process: it starts, watches, restarts and stops every long-lived child.

In ``qthumb serve`` it owns the worker pool and the frame server; in ``qthumb api`` the frame
server; in ``qthumb worker`` the worker pool (docs/architecture.md, "Processes"). Every start,
every wait and every stop runs on the supervisor's one thread:

- a child that exits on its own is logged with why (its exit code or signal) and started
  again: at once when it is started on demand (the frame server, on the next request that
  needs it), else after a backoff (1 s, doubling to ``max_backoff``, back to 1 s once a child
  has run for a minute);
- a child ended by SIGTERM or SIGINT was most likely signalled with its whole process group
  (``docker stop``, Ctrl-C): the supervisor's process gets the same signal a moment later, so it
  waits ``STOP_GRACE`` seconds for its own stop before counting the child as crashed;
- ``stop()`` sends every child SIGTERM, waits up to its ``stop_timeout`` and then SIGKILLs it.

The kernel's parent-death signal (``app.children.orphans``) stays as the backstop for a
supervisor that is SIGKILLed: it is tied to the thread that forked the child, and this thread
lives as long as the process.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger("qthumb.supervisor")
T = TypeVar("T")

POLL_SECONDS = 0.2
STOP_GRACE = 3.0
STEADY_SECONDS = 60.0  # a child that ran this long starts again after the shortest backoff


class ChildUnavailable(Exception):
    """The child cannot be had: the supervisor is stopping, or the child did not start."""


@dataclass(frozen=True)
class ChildSpec:
    """How to run one child. ``argv`` and ``stdin`` are called at each start (a new address or
    key each time); ``stdin``'s bytes are written once and the pipe is kept open, so the child
    also learns of its parent's end by EOF."""

    name: str
    argv: Callable[[], list[str]]
    env: Mapping[str, str] | None = None
    stdin: Callable[[], bytes] | None = None
    ready_timeout: float | None = None  # wait this long for a "ready" line on stdout
    on_demand: bool = False
    stop_timeout: float = 10.0
    max_backoff: float = 30.0


@dataclass(eq=False)
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    next_start: float = 0.0
    backoff: float = 1.0
    starts: int = 0
    retired: bool = False  # being stopped, or stopped: never started again
    kill_at: float = 0.0  # when a retired child still running is SIGKILLed
    exits: list[int] = field(default_factory=list)  # exit codes, newest last

    @property
    def pid(self) -> int | None:
        process = self.process
        return None if process is None or process.poll() is not None else process.pid


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class Supervisor:
    def __init__(self, name: str = "supervisor") -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]]
        self._calls = queue.SimpleQueue()
        self._children: list[Child] = []
        self._closing = threading.Event()  # nothing starts from now on
        self._stopping = threading.Event()  # every child ends now
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- asked from any thread -------------------------------------------------------------

    def add(self, spec: ChildSpec) -> Child:
        """Own a child: started now unless it is started on demand."""
        child = Child(spec)
        self._call(lambda: self._adopt(child))
        return child

    def ensure(self, child: Child) -> subprocess.Popen[bytes]:
        """The child's running process, started first if it is not running."""
        return self._call(lambda: self._ensure(child))

    def kill(self, child: Child, process: subprocess.Popen[bytes], why: str) -> None:
        """SIGKILL this process of the child (if it still is the child's), e.g. stuck."""
        self._call(lambda: self._kill(child, process, why))

    def no_more_starts(self) -> None:
        """From now on no child is started or started again; those running keep running."""
        self._closing.set()

    def begin_stop(self, child: Child, signum: int = signal.SIGTERM) -> None:
        """Stop one child now (``signum``, SIGKILL after its ``stop_timeout``), without
        waiting, and start nothing again (safe in a signal handler: a ``SimpleQueue`` put)."""
        self._closing.set()
        self._calls.put((lambda: self._retire(child, signum, time.monotonic()), Future()))

    def stop(self) -> None:
        """Stop every child and wait until they have ended."""
        self._closing.set()
        self._stopping.set()
        self._calls.put((lambda: None, Future()))  # wakes the thread at once
        self._thread.join()

    @property
    def stopping(self) -> bool:
        return self._closing.is_set()

    def _call(self, fn: Callable[[], T]) -> T:
        if threading.current_thread() is self._thread:
            return fn()
        if self._stopping.is_set():
            raise ChildUnavailable("stopping")
        future: Future[object] = Future()
        self._calls.put((fn, future))
        return future.result()  # type: ignore[return-value]

    # -- the supervisor's thread ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                fn, future = self._calls.get(timeout=POLL_SECONDS)
            except queue.Empty:
                pass
            else:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as exc:
                        future.set_exception(exc)
            try:
                self._watch(time.monotonic())
            except Exception:  # never let the thread that owns the children die
                log.exception("supervisor: watching children failed")
        self._end_all()
        while True:  # whoever still waits on a call learns it will not happen
            try:
                _, future = self._calls.get_nowait()
            except queue.Empty:
                break
            if future.set_running_or_notify_cancel():
                future.set_exception(ChildUnavailable("stopping"))

    def _adopt(self, child: Child) -> None:
        self._children.append(child)
        if not child.spec.on_demand and not self._closing.is_set():
            self._start(child)

    def _ensure(self, child: Child) -> subprocess.Popen[bytes]:
        if child.process is not None and child.process.poll() is None:
            return child.process
        self._reap(child, time.monotonic())
        if self._closing.is_set():
            raise ChildUnavailable("stopping")
        self._start(child)
        assert child.process is not None
        return child.process

    def _start(self, child: Child) -> None:
        spec = child.spec
        child.starts += 1
        process = subprocess.Popen(
            spec.argv(),
            env=dict(spec.env) if spec.env is not None else None,
            stdin=subprocess.PIPE if spec.stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if spec.ready_timeout else None,
        )
        if spec.stdin is not None and process.stdin is not None:
            process.stdin.write(spec.stdin())
            process.stdin.flush()  # kept open: its end is the child's signal to stop
        if spec.ready_timeout and process.stdout is not None:
            ready, _, _ = select.select([process.stdout], [], [], spec.ready_timeout)
            line = process.stdout.readline() if ready else b""
            if line.strip() != b"ready":
                _end(process, 0)
                raise ChildUnavailable(f"the {spec.name} did not start")
        child.process, child.started_at = process, time.monotonic()
        log.info("%s started (pid %d)", spec.name, process.pid)

    def _kill(self, child: Child, process: subprocess.Popen[bytes], why: str) -> None:
        if child.process is process and process.poll() is None:
            log.error("stopping the %s (pid %d): %s", child.spec.name, process.pid, why)
            process.kill()
            process.wait()
            self._reap(child, time.monotonic(), quiet=True)

    def _retire(self, child: Child, signum: int, now: float) -> None:
        child.retired = True
        if child.process is not None and child.process.poll() is None:
            child.process.send_signal(signum)
            child.kill_at = now + child.spec.stop_timeout

    def _reap(self, child: Child, now: float, quiet: bool = False) -> bool:
        """Forget a process that ended; True if one had."""
        process = child.process
        if process is None or process.poll() is None:
            return False
        code = process.returncode
        child.process = None
        child.exits.append(code)
        _close_pipes(process)
        if now - child.started_at >= STEADY_SECONDS:
            child.backoff = 1.0
        if quiet or child.retired:
            return True
        if code in (-signal.SIGTERM, -signal.SIGINT) and self._closing.wait(STOP_GRACE):
            return True  # the signal went to the whole group: we are stopping too
        if child.spec.on_demand:
            log.error(
                "%s (pid %d) ended (%s); it starts again when next needed",
                child.spec.name,
                process.pid,
                describe_exit(code),
            )
        else:
            child.next_start = now + child.backoff
            log.error(
                "%s (pid %d) ended (%s); starting it again in %.0f s",
                child.spec.name,
                process.pid,
                describe_exit(code),
                child.backoff,
            )
            child.backoff = min(child.backoff * 2, child.spec.max_backoff)
        return True

    def _watch(self, now: float) -> None:
        for child in self._children:
            self._reap(child, now)
            process = child.process
            if child.retired and process is not None and now >= child.kill_at:
                log.warning(
                    "%s (pid %d) still running %.0f s after SIGTERM: killed",
                    child.spec.name,
                    process.pid,
                    child.spec.stop_timeout,
                )
                process.kill()
            if self._closing.is_set() or child.retired:
                continue
            if process is None and not child.spec.on_demand and now >= child.next_start:
                try:
                    self._start(child)
                except (OSError, ChildUnavailable) as exc:
                    child.next_start = now + child.backoff
                    child.backoff = min(child.backoff * 2, child.spec.max_backoff)
                    log.error(
                        "%s did not start (%s); trying again in %.0f s",
                        child.spec.name,
                        exc,
                        child.backoff,
                    )

    def _end_all(self) -> None:
        running = [(c, c.process) for c in self._children if c.process is not None]
        now = time.monotonic()
        for child, process in running:
            if process is not None and process.poll() is None and not child.retired:
                process.send_signal(signal.SIGTERM)  # a retired one has had its signal
                child.kill_at = now + child.spec.stop_timeout
        for child, process in running:
            assert process is not None
            _end(process, max(0.0, child.kill_at - time.monotonic()), child.spec.name)
            child.process = None


def _end(process: subprocess.Popen[bytes], timeout: float, name: str = "") -> None:
    """Wait ``timeout`` seconds for a signalled process, then SIGKILL it."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning(
            "%s (pid %d) still running after its stop timeout: killed", name or "child", process.pid
        )
        process.kill()
        process.wait()
    _close_pipes(process)


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    for pipe in (process.stdin, process.stdout):
        if pipe is not None and not pipe.closed:
            with contextlib.suppress(OSError):
                pipe.close()
