"""What a media child process (``workers.outputs.encoding.encode``,
``workers.media.stitching``) says to the worker that started it
(``workers.outputs.encoding.run.run_child``): ``out_time_us=…`` lines on stdout as ffmpeg's
``-progress`` writes them, and, when it fails, one line saying why on stderr and exit code 1."""

from __future__ import annotations

import sys
from collections.abc import Callable

import av

from qthumb.workers.failures import MediaError


class Progress:
    """``progress(seconds)``: one ``out_time_us`` line every 0.2 s of output at most."""

    def __init__(self) -> None:
        self.last = -1.0

    def __call__(self, seconds: float) -> None:
        if seconds - self.last >= 0.2:
            self.last = seconds
            print(f"out_time_us={int(seconds * 1e6)}", flush=True)


def child_main(run: Callable[[str], None], argv: list[str] | None = None) -> int:
    """``run(plan_json)`` with the first argument; its failure as one line and exit code 1."""
    args = sys.argv[1:] if argv is None else argv
    try:
        run(args[0])
    except (MediaError, av.FFmpegError, ValueError, OSError) as exc:
        print(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, file=sys.stderr)
        return 1
    return 0
