"""What the offline commands show while they work. On a terminal: a bar a running source
(frames done of its total, once probed) and an overall bar with the elapsed time and an ETA
(rich). Otherwise: one plain line a source as it ends, nothing that redraws. Both print every
source's outcome line to stderr; stdout stays for ``--json``."""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # rich is imported when a terminal is there to draw on
    from rich.progress import TaskID


class PlainProgress:
    """Lines only: for logs, pipes and CI."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream, self.done = total, stream, 0
        self._lock = threading.Lock()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def started(self, key: int, source: str) -> None:
        return None

    def sized(self, key: int, frames: int) -> None:
        return None

    def advanced(self, key: int, percent: float) -> None:
        return None

    def ended(self, key: int, line: str) -> None:
        with self._lock:
            self.done += 1
            print(f"[{self.done}/{self.total}] {line}", file=self.stream, flush=True)


class TerminalProgress(PlainProgress):
    """Bars that redraw in place, with the outcome lines printed above them."""

    def __init__(self, total: int, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        super().__init__(total, stream)
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=stream, force_terminal=True),
            transient=False,
        )
        self.overall = self.progress.add_task("all", total=total, unit="sources")
        self.bars: dict[int, TaskID] = {}
        self.shares: dict[int, float] = {}  # each running source's fraction done

    def __enter__(self) -> TerminalProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def started(self, key: int, source: str) -> None:
        name = source.rsplit("/", 1)[-1][:40]
        with self._lock:
            self.bars[key] = self.progress.add_task(name, total=100, unit="%")
            self.shares[key] = 0.0

    def sized(self, key: int, frames: int) -> None:
        with self._lock:
            if key in self.bars and frames > 0:
                self.progress.update(self.bars[key], total=frames, unit="frames")

    def advanced(self, key: int, percent: float) -> None:
        with self._lock:
            bar = self.bars.get(key)
            if bar is None:
                return
            total = self.progress.tasks[self._index(bar)].total or 100
            self.progress.update(bar, completed=round(total * percent / 100))
            self.shares[key] = percent / 100
            self.progress.update(self.overall, completed=self.done + sum(self.shares.values()))

    def ended(self, key: int, line: str) -> None:
        with self._lock:
            bar = self.bars.pop(key, None)
            if bar is not None:
                self.progress.remove_task(bar)
            self.shares.pop(key, None)
            self.done += 1
            self.progress.update(self.overall, completed=self.done + sum(self.shares.values()))
            self.progress.console.print(
                f"[{self.done}/{self.total}] {line}", markup=False, highlight=False
            )

    def _index(self, bar: TaskID) -> int:
        return next(i for i, t in enumerate(self.progress.tasks) if t.id == bar)


def progress_for(total: int, stream: TextIO = sys.stderr) -> PlainProgress:
    """Bars on a terminal, lines otherwise."""
    return TerminalProgress(total, stream) if stream.isatty() else PlainProgress(total, stream)
