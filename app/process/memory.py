"""``QTHUMB_WORKER_MEMORY_LIMIT``: a ceiling on the memory of every process that decodes.

Set as ``RLIMIT_DATA`` in each worker process as it starts (its encoder child inherits it) and
in the frame server. ``RLIMIT_DATA`` counts private writable memory, what decoding and
imaging allocate; unlike ``RLIMIT_AS`` it leaves out shared libraries and the address space
glibc reserves for each thread's heap without using it (measured here: an idle worker has
110 MB of data in 252 MB of address space, and a decoder thread reserves 64 MB it may never
touch). Past the limit an allocation fails: Python, NumPy, Pillow and PyAV all raise
``MemoryError``, which fails the format being made with ``memory_failure``, and the worker
goes on with the next task.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import resource
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


def memory_limit(settings: Settings) -> int:
    if settings.worker_memory_limit:
        return settings.worker_memory_limit
    return max(GIB, int(machine_memory() * 0.8) // max(1, settings.workers))


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


def memory_failure(settings: Settings) -> str:
    limit = memory_limit(settings)
    return (
        f"ran out of memory: it needs more than QTHUMB_WORKER_MEMORY_LIMIT allows "
        f"({limit / 2**20:,.0f} MiB a worker process)"
    )
