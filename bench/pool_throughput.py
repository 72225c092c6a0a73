"""Tasks a minute through ``qthumb serve`` with 1, 2 and 4 worker processes (issue #23),
written into the "Pool throughput" section of bench/RESULTS.md.

Before: every worker process decoded with as many threads as the machine has cores (what
``QTHUMB_DECODE_THREADS=0`` meant until #23, reproduced here by setting it to the core count);
after: the default budget, the cores shared among the worker processes. The same run measures
both, on two sources generated here: synthetic (testsrc2, 720p, fixed 2 s GOPs) and realistic
(the same under heavy temporal noise, scene-cut GOPs, a B-pyramid). Each task: a sprite of a
frame every 5 s at 320 px and a poster, the shape of a seek-bar preview job. Tasks are all
started at once and the clock stops when the last one completes.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import write_section  # noqa: E402
from bench.run import API_KEY, start_server  # noqa: E402
from bench.sources import WORK  # noqa: E402
from tests.qclient import QClient  # noqa: E402

MARK_START, MARK_END = "<!-- pool:start -->", "<!-- pool:end -->"
TASKS = 12
SOURCES = {
    "synthetic": ("pool_synthetic.mp4", "testsrc2=s=1280x720:r=25:d=120",
                  ["-x264-params", "keyint=50:min-keyint=50:scenecut=0", "-bf", "2"]),
    "realistic": ("pool_noise.mp4", "testsrc2=s=1280x720:r=25:d=60,noise=alls=30:allf=t+u",
                  ["-bf", "3", "-b-pyramid", "normal"]),
}  # fmt: skip


def source(name: str) -> Path:
    file, graph, args = SOURCES[name]
    path = WORK / file
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", graph,
                        "-c:v", "libx264", "-preset", "veryfast", *args, "-pix_fmt", "yuv420p",
                        str(path)], check=True)  # fmt: skip
    return path


def tasks_a_minute(path: Path, workers: int, decode_threads: int) -> float:
    settings = {"QTHUMB_DECODE_THREADS": str(decode_threads)} if decode_threads else {}
    server = start_server(WORK / "pool-data", workers=workers, **settings)
    query = {"source": str(path), "format": [
        {"output": "thumbnails", "interval": 5, "sprite": 1, "columns": 6, "width": 320},
        {"output": "thumbnail", "time": 0.5, "width": 640}]}  # fmt: skip
    try:
        with QClient(server.base_url, API_KEY) as client:
            client.wait(client.start(query), timeout=600)  # warm-up: imports, page cache
            started = time.monotonic()
            tokens = [client.start(query) for _ in range(TASKS)]
            for token in tokens:
                status = client.wait(token, timeout=1800)
                assert status["status"] == "completed", status
            return TASKS * 60 / (time.monotonic() - started)
    finally:
        server.stop()


def main() -> None:
    cores = os.cpu_count() or 1
    rows = []
    for name in SOURCES:
        path = source(name)
        for workers in (1, 2, 4):
            # before, after, after, before: each the mean of two runs placed so that a drift
            # of the machine during the four moves both alike (one run a side moved a figure
            # by up to 9% here, in either direction)
            runs: dict[int, list[float]] = {cores: [], 0: []}
            for threads in (cores, 0, 0, cores):
                runs[threads].append(tasks_a_minute(path, workers, decode_threads=threads))
            before, after = (sum(runs[t]) / 2 for t in (cores, 0))
            shared = max(cores, workers)
            rows.append(f"| {name} | {workers} | {workers * cores} | {before:.1f} | {shared} | "
                        f"{after:.1f} | {after / before:.2f}x |")  # fmt: skip
            print(rows[-1], flush=True)
    section = "\n".join([
        MARK_START,
        "## Pool throughput: decode threads bounded by the machine",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {cores} cores, "
        f"`bench/pool_throughput.py`: {TASKS} tasks started at once through `qthumb serve`, "
        "each a sprite of a frame every 5 s at 320 px plus a 640 px poster of a 720p source "
        "(synthetic: 2 minutes, 24 frames; realistic: 1 minute, 12 frames). "
        "Before: each worker process decodes with a thread a core (what the default was "
        "until #23); after: the default, the cores shared among the tasks running on the "
        "machine (one thread each at least; a task that starts alone takes every core). "
        "Threads: decoding threads at once at most. Each figure is the mean of two runs, in "
        "the order before, after, after, before. "
        "Synthetic: testsrc2, fixed 2 s GOPs. Realistic: the same under heavy temporal "
        "noise, x264's scene-cut GOPs and a B-pyramid.",
        "",
        "| source | workers | threads before | tasks/min before | threads after "
        "| tasks/min after | after/before |",
        "|---|---|---|---|---|---|---|",
        *rows,
        MARK_END,
    ])  # fmt: skip
    write_section(section, MARK_START, MARK_END)
    print(section)


if __name__ == "__main__":
    main()
