"""``QTHUMB_MEMORY_BUDGET``: what the processes that decode may allocate together, on this
machine, and each one's share of it.

The budget (default: 80% of the machine's memory, or of the container's limit) is shared by
the worker pool's processes (``QTHUMB_WORKERS`` and the spare) and the frame server, a share
each (``QTHUMB_WORKER_MEMORY_LIMIT`` sets the share instead). A worker's encoder child gets what
its worker leaves of that share when it starts, so a worker and its encoder together stay
within one share, and the shares within the budget: the kernel's OOM killer never has to act
before the limit does. Set as ``RLIMIT_DATA`` in each worker process as it starts, in the
frame server, and on each encoder child as it is started. ``RLIMIT_DATA`` counts private
writable memory, what decoding and imaging allocate; unlike ``RLIMIT_AS`` it leaves out
shared libraries and the address space glibc reserves for each thread's heap without using
it (measured here: an idle worker has 110 MB of data in 252 MB of address space, and a
decoder thread reserves 64 MB it may never touch). Past the limit an allocation fails:
Python, NumPy, Pillow and PyAV all raise ``MemoryError``, which fails the format being made
with ``memory_failure``, and the worker goes on with the next task. A library that crashes
instead is told as memory too (``crash_failure``, ``app.process.attempt_watch``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import resource
import shutil
from pathlib import Path

from qthumb.app.settings import Settings

log = logging.getLogger("qthumb.memory")
GIB = 1 << 30


def machine_memory() -> int:
    """Bytes of memory this process may use: the cgroup's limit (a container) when it has one,
    else the machine's RAM."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # cgroup v1 says "no limit" with 2^63
            return int(text)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * GIB


MIN_SHARE = 256 << 20  # a worker's share is never less: an idle worker holds ~60-110 MB
MIN_CHILD = 64 << 20  # an encoder child's, whatever its worker holds


def memory_budget(settings: Settings) -> int:
    """Bytes the worker pool and the frame server of this machine may allocate together."""
    return settings.memory_budget or int(machine_memory() * 0.8)


def memory_limit(settings: Settings) -> int:
    """One process's share: a worker process (with its encoder child) or the frame server."""
    if settings.worker_memory_limit:
        return settings.worker_memory_limit
    return max(MIN_SHARE, memory_budget(settings) // (settings.pool_processes + 1))


def data_in_use() -> int:
    """Bytes of private writable memory this process holds (``VmData``, what RLIMIT_DATA
    counts)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def fits(size: int) -> bool:
    """Whether this process may still allocate ``size`` bytes under its limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    return soft == resource.RLIM_INFINITY or soft - data_in_use() >= size


def within_what_is_left(argv: list[str]) -> list[str]:
    """``argv`` run under what this process leaves of its own limit, so the two together stay
    within this process's share (the encoder child). Set by util-linux's ``prlimit`` before
    the program starts: a limit set from outside after the start would leave a moment in
    which the child runs with the whole share. Unchanged when this process has no limit or
    ``prlimit`` is missing (then ``limit_child`` sets it once the child has started)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    prlimit = shutil.which("prlimit")
    if soft == resource.RLIM_INFINITY or prlimit is None:
        return argv
    left = max(MIN_CHILD, soft - data_in_use())
    ceiling = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    return [prlimit, f"--data={left}:{ceiling}", "--", *argv]


def limit_child(pid: int) -> None:
    """Give the child ``pid`` what this process leaves of its own limit, where
    ``within_what_is_left`` could not (no ``prlimit`` program)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if soft == resource.RLIM_INFINITY or shutil.which("prlimit") is not None:
        return
    left = max(MIN_CHILD, soft - data_in_use())
    with contextlib.suppress(ProcessLookupError, PermissionError):  # ended already
        resource.prlimit(pid, resource.RLIMIT_DATA, (left, hard))


def limit_memory(settings: Settings) -> int:
    """Apply the limit to this process (and so to the children it starts); the bytes."""
    limit = memory_limit(settings)
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    return limit


def give_back_memory() -> None:
    """After a task that failed: collect what cycles hold, then hand the heap's free pages
    back to the kernel (glibc's ``malloc_trim``, every arena). After a format ran out of memory the
    worker's heap stays grown otherwise (measured: 368 MB of VmData left under a 381 MiB
    limit), and the next task's decoder threads cannot start (EAGAIN)."""
    gc.collect()
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to trim
        pass


def heap_stays_high() -> tuple[int, int] | None:
    """``(bytes mapped, limit)`` when this process still maps more than half its limit, else
    None. Freeing gives pages back but not always the mappings RLIMIT_DATA counts: glibc's
    thread arenas stay mapped at their largest, and its main heap shrinks from the top only
    (measured: 289-369 MB of VmData left under a 381 MiB limit after a format that ran out of
    memory, even after ``give_back_memory``), so the next task could fail for want of what it
    freed."""
    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    if soft == resource.RLIM_INFINITY:
        return None
    mapped = data_in_use()
    return (mapped, soft) if mapped > soft // 2 else None


def memory_setting(settings: Settings) -> str:
    """The setting that decides a process's share, as a person would set it."""
    if settings.worker_memory_limit:
        return "QTHUMB_WORKER_MEMORY_LIMIT"
    return "its share of QTHUMB_MEMORY_BUDGET"


def memory_failure(settings: Settings) -> str:
    limit = memory_limit(settings)
    return (
        f"ran out of memory: it needs more than {memory_setting(settings)} allows "
        f"({limit / 2**20:,.0f} MiB a worker process)"
    )


def crash_failure(settings: Settings, crash: str) -> str:
    """A worker that died of a fatal signal (``crash``, as the interpreter named it) while it
    ran a task: libraries that cannot allocate may crash instead of failing."""
    limit = memory_limit(settings)
    return (
        f"the worker crashed ({crash}) while making it, within a memory limit of "
        f"{limit / 2**20:,.0f} MiB a worker process ({memory_setting(settings)}): it most "
        "likely ran out of memory in a media library, which crashed rather than fail"
    )
