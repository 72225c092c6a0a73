"""Load: 200 tasks submitted at once to ``qthumb serve`` (2 workers) while a client polls status
without pause. Reports status latency (p50/p99) while every worker is busy, tasks per minute
and the workers' peak RSS, and writes them into the "Load" section of bench/RESULTS.md."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import API_KEY, start_server, worker_peak_rss_mb  # noqa: E402
from bench.sources import WORK  # noqa: E402
from tests.qclient import QClient  # noqa: E402

TASKS = 200
MARK_START, MARK_END = "<!-- load:start -->", "<!-- load:end -->"


def source() -> Path:
    path = WORK / "load_720p_60s.mp4"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
             "-i", "testsrc2=s=1280x720:r=25:d=60", "-c:v", "libx264", "-preset", "veryfast",
             "-x264-params", "keyint=50:min-keyint=50:scenecut=0", "-pix_fmt", "yuv420p",
             str(path)],
            check=True,
        )  # fmt: skip
    return path


def main() -> None:
    clip = source()
    server = start_server(WORK / "load-data", workers=2)
    query = {"source": str(clip), "format": [
        {"output": "thumbnail", "time": 0.5, "width": 320},
        {"output": "thumbnails", "interval": 6, "sprite": 1, "columns": 5, "width": 160,
         "image_format": "jpg"},
    ]}  # fmt: skip
    latencies: list[float] = []
    stop = threading.Event()
    try:
        with QClient(server.base_url, API_KEY) as client:
            tokens = [client.new_task() for _ in range(TASKS)]
            forms = [{"task_token": t, "query": json.dumps({"query": query})} for t in tokens]
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=16) as pool:
                replies = list(pool.map(lambda f: QClient(server.base_url, API_KEY).post(
                    "start_encode2", f), forms))  # fmt: skip
            submitted = time.perf_counter() - start
            assert all(r["error"] == 0 for r in replies), replies[:3]

            def poll() -> None:
                with QClient(server.base_url, API_KEY) as poller:
                    while not stop.is_set():
                        t0 = time.perf_counter()
                        poller.status(tokens[len(latencies) % TASKS])
                        latencies.append(time.perf_counter() - t0)

            poller = threading.Thread(target=poll)
            poller.start()
            done = 0
            while done < TASKS:
                reply = client.post("status", {"task_tokens": ",".join(tokens)})
                states = [s["status"] for s in reply["statuses"].values()]
                done = sum(1 for s in states if s in ("completed", "error"))
                time.sleep(0.5)
            elapsed = time.perf_counter() - start
            stop.set()
            poller.join()
            failed = sum(1 for s in states if s == "error")
            rss = worker_peak_rss_mb(server)
    finally:
        stop.set()
        server.stop()
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000
    section = "\n".join([
        MARK_START,
        "### Load: 200 tasks at once (synthetic source)",
        "",
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} by `bench/load.py`, "
        f"{os.cpu_count()} cores: {TASKS} tasks submitted at once (16 client threads) to "
        "`qthumb serve "
        "--workers 2`, each a 320-px thumbnail and a 10-tile sprite of a 60-second 720p file "
        "(synthetic: lavfi `testsrc2`, 2 s GOPs), "
        "while one client polls status without pause.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| submitting {TASKS} start_encode2 | {submitted:.2f} s |",
        f"| all {TASKS} ended ({failed} in error) | {elapsed:.1f} s |",
        f"| tasks per minute | {TASKS / elapsed * 60:.0f} |",
        f"| status while every worker is busy: p50 / p99 ({len(lat)} calls) | "
        f"{p50:.1f} ms / {p99:.1f} ms |",
        f"| worker peak RSS | {rss:.0f} MB |",
        MARK_END,
    ])  # fmt: skip
    print(section)
    write_section(section, MARK_START, MARK_END)


def write_section(section: str, start: str, end: str) -> None:
    """Put ``section`` (which begins with ``start`` and ends with ``end``) into
    bench/RESULTS.md, in place of the one there, or at the end."""
    results = ROOT / "bench" / "RESULTS.md"
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else (text.rstrip() + "\n\n" + section)
    )
    results.write_text(text + ("" if text.endswith("\n") else "\n"))


if __name__ == "__main__":
    main()
