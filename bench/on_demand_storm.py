"""The Qencode API beside a storm of frames on demand (issue #23), written into the
"On-demand storm" section of bench/RESULTS.md.

``qthumb api`` alone (no workers compete for the 2 cores), default settings. Latency of
``/v1/status`` (one task) and of ``start_encode2`` (a new task each), one request at a time:
idle, then while 40 ``/v1/thumbnail.jpg`` requests wait on a source that accepts the connection
and never answers (a loopback origin that holds every connection). The goal (#23): p99 during
the storm at most 2x idle. Synthetic: the source is a socket, no media is decoded.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import write_section  # noqa: E402
from bench.run import API_KEY, start_server  # noqa: E402
from bench.sources import WORK  # noqa: E402
from tests.qclient import QClient  # noqa: E402

MARK_START, MARK_END = "<!-- storm:start -->", "<!-- storm:end -->"
STORM = 40
SAMPLES = 200


class HoldingOrigin:
    """Accepts connections and never answers, holding each one."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/never.mp4"

    def _hold(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.held.append(self.listener.accept()[0])

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.listener.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latencies(client: QClient, task: str, source: str) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"status": [], "start_encode2": []}
    for n in range(SAMPLES):
        began = time.perf_counter()
        client.status(task)
        found["status"].append(time.perf_counter() - began)
        if n % 4 == 0:  # a quarter as many starts: each adds a task to the store
            token = client.new_task()
            query = {"query": {"source": source, "format": [{"output": "thumbnail"}]}}
            began = time.perf_counter()
            reply = client.post("start_encode2", {"task_token": token, "query": json.dumps(query)})
            found["start_encode2"].append(time.perf_counter() - began)
            assert reply["error"] == 0, reply
    return found


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "clip.mp4").touch()  # a local source start_encode2 accepts; no worker reads it
    origin = HoldingOrigin()
    server = start_server(WORK / "storm-data", workers=0, command="api",
                          QTHUMB_ALLOWED_NETWORKS="127.0.0.0/8",
                          QTHUMB_SOURCE_READ_TIMEOUT="600")  # fmt: skip
    answers: list[int] = []
    try:
        with QClient(server.base_url, API_KEY) as client:
            slow = client.start({"source": origin.url, "format": [{"output": "metadata"}]})
            local = str(WORK / "clip.mp4")
            latencies(client, slow, local)  # warm-up
            idle = latencies(client, slow, local)

            def ask(n: int) -> None:
                with contextlib.suppress(httpx.HTTPError):
                    answer = httpx.get(f"{server.base_url}/v1/thumbnail.jpg",
                                       params={"task_token": slow, "time": str(n)},
                                       timeout=900)  # fmt: skip
                    answers.append(answer.status_code)

            for n in range(STORM):
                threading.Thread(target=ask, args=(n,), daemon=True).start()
            deadline = time.monotonic() + 60
            while not origin.held and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # every request of the storm has arrived
            held = len(origin.held)
            storm = latencies(client, slow, local)
            waiting = STORM - len(answers)
            refused = sum(1 for code in answers if code == 503)
    finally:
        server.stop()
        origin.close()
    rows = []
    for name in ("status", "start_encode2"):
        i50, i99 = percentile(idle[name], 50), percentile(idle[name], 99)
        s50, s99 = percentile(storm[name], 50), percentile(storm[name], 99)
        rows.append(
            f"| `{name}` | {len(idle[name])} | {i50 * 1000:.1f} | {i99 * 1000:.1f} | "
            f"{s50 * 1000:.1f} | {s99 * 1000:.1f} | {s99 / i99:.2f}x |"
        )
    section = "\n".join(
        [
            MARK_START,
            "## On-demand storm: the Qencode API while 40 frames wait on a slow source",
            "",
            f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, "
            f"{os.cpu_count()} cores, `qthumb api` with default settings "
            "(`QTHUMB_ON_DEMAND_CONCURRENCY` = cores, `QTHUMB_ON_DEMAND_QUEUE` = 32), "
            "`bench/on_demand_storm.py`. Synthetic: the source is a loopback socket that "
            "never answers. One request at a time, in milliseconds.",
            "",
            "| request | samples | idle p50 | idle p99 | storm p50 | storm p99 | p99 storm/idle |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"During the storm: {waiting} frame requests in flight (made or queued; the frame "
            f"server fetches their one source once: {held} connection held by the origin), "
            f"{refused} answered 503 with `Retry-After` at once (past the queue). "
            "Before (#23's report, another run): "
            "`create_task` 42.3 s and `start_encode2` 28.1 s under 40 such requests, against "
            "4 ms and 6-8 ms idle. Goal: storm p99 at most 2x idle.",
            MARK_END,
        ]
    )
    write_section(section, MARK_START, MARK_END)
    print(section)
    print(f"(statistics: idle status mean {statistics.mean(idle['status']) * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
