"""A memory watchdog for tests that feed qthumb hostile queries: it watches every process of a
server's session (``start_new_session``), records each one's peak RSS, and kills the whole
session if one passes the limit, so a regression fails a test instead of the machine."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path
from types import TracebackType

from qthumb.app.children.orphans import processes


def session_pids(sid: int) -> list[int]:
    """Processes whose session id is ``sid`` (field 6 of /proc/PID/stat)."""
    return [pid for pid, fields in processes() if len(fields) > 3 and int(fields[3]) == sid]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class MemoryWatchdog:
    def __init__(self, sid: int, limit_mb: float, interval: float = 0.1) -> None:
        self.sid, self.limit_mb, self.interval = sid, limit_mb, interval
        self.peak_mb = 0.0
        self.tripped: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatchdog:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in session_pids(self.sid):
                rss = rss_mb(pid)
                self.peak_mb = max(self.peak_mb, rss)
                if rss > self.limit_mb:
                    self.tripped = f"process {pid} reached {rss:.0f} MB"
                    with contextlib.suppress(OSError):
                        os.killpg(self.sid, signal.SIGKILL)
                    return
