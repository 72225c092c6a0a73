"""Embedded against distributed backend, in one run (issue #10), written into the "Backends"
section of bench/RESULTS.md:

- ``/v1/status`` requests per second (wrk, 32 connections, 2 threads) on each backend, next to
  a bare FastAPI endpoint that reads the same form and answers a constant (the ceiling the API
  framework allows on this machine), measured in the same run;
- ``start_encode2`` per second with 16 concurrent connections (wrk, each request a new task),
  against ``qthumb api`` alone so no worker competes for the 2 cores;
- tasks per minute through ``qthumb serve`` with 1, 2 and 4 worker processes.

The distributed backend runs on PostgreSQL 15, Redis and moto's S3 started on loopback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import source, write_section  # noqa: E402
from bench.run import API_KEY, start_server  # noqa: E402
from bench.sources import WORK  # noqa: E402
from tests.engines import Engines, postgres_server, redis_server, s3_server  # noqa: E402
from tests.qclient import QClient  # noqa: E402

MARK_START, MARK_END = "<!-- backends:start -->", "<!-- backends:end -->"
WRK_SECONDS = 8
TASKS_PER_RUN = 60

BARE_APP = """
from fastapi import FastAPI, Request
app = FastAPI()

@app.post("/v1/status")
async def status(request: Request) -> dict:
    form = await request.form()
    return {"error": 0, "statuses": {str(form.get("task_tokens")): None}}
"""

STATUS_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "task_tokens=%s"
"""

START_LUA = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
local query = "%s"
local n = 0
request = function()
  n = n + 1
  local token = tokens[(n - 1) %% #tokens + 1]
  return wrk.format("POST", "/v1/start_encode2",
    {["Content-Type"] = "application/x-www-form-urlencoded"},
    "task_token=" .. token .. "&query=" .. query)
end
"""


def wrk(url: str, script: str, connections: int, threads: int = 2) -> float:
    """Requests per second that wrk reports."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{WRK_SECONDS}s", "-s", f.name, url],
        capture_output=True, text=True, check=True, timeout=WRK_SECONDS + 60,
    ).stdout  # fmt: skip
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


@contextmanager
def bare_api() -> Iterator[str]:
    app = WORK / "bare_app.py"
    app.write_text(BARE_APP)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port",
         "18765", "--log-level", "warning"],
        cwd=WORK, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(2)
        yield "http://127.0.0.1:18765"
    finally:
        proc.terminate()
        proc.wait()


def status_rps(settings: dict[str, str], name: str) -> float:
    server = start_server(WORK / f"backends-{name}-status", 0, "api", **settings)
    try:
        with QClient(server.base_url, API_KEY) as client:
            token = client.new_task()
        return wrk(f"{server.base_url}/v1/status", STATUS_LUA % token, 32)
    finally:
        server.stop()


def start_rate(settings: dict[str, str], name: str, clip: Path) -> tuple[float, int]:
    """start_encode2 accepted per second; and how many tasks were started in all."""
    server = start_server(
        WORK / f"backends-{name}-start", 0, "api", QTHUMB_MAX_ACTIVE_TASKS_PER_KEY="1000000",
        **settings,
    )  # fmt: skip
    try:
        with QClient(server.base_url, API_KEY) as client:
            session = client.token()
            tokens = [client.post("create_task", {"token": session})["task_token"]
                      for _ in range(6000)]  # fmt: skip
        tokens_file = WORK / f"tokens-{name}.txt"
        tokens_file.write_text("\n".join(tokens) + "\n")
        query = json.dumps({"query": {"source": str(clip), "format": [{"output": "thumbnail"}]}})
        encoded = urllib.parse.quote(query, safe="")
        started = time.perf_counter()
        wrk(f"{server.base_url}/v1/start_encode2", START_LUA % (tokens_file, encoded), 16, 1)
        elapsed = time.perf_counter() - started
        with QClient(server.base_url, API_KEY) as client:
            statuses: dict[str, Any] = {}
            for i in range(0, len(tokens), 500):
                chunk = ",".join(tokens[i : i + 500])
                statuses.update(client.post("status", {"task_tokens": chunk})["statuses"])
        queued = sum(1 for s in statuses.values() if s and s["status"] != "created")
        return queued / min(elapsed, WRK_SECONDS), queued
    finally:
        server.stop()


def tasks_per_minute(settings: dict[str, str], name: str, workers: int, clip: Path) -> float:
    server = start_server(WORK / f"backends-{name}-tpm{workers}", workers, **settings)
    query = {"source": str(clip), "format": [
        {"output": "thumbnail", "time": 0.5, "width": 320},
        {"output": "thumbnails", "interval": 6, "sprite": 1, "columns": 5, "width": 160,
         "image_format": "jpg"},
    ]}  # fmt: skip
    try:
        with QClient(server.base_url, API_KEY) as client:
            client.wait(client.start(query), timeout=120)  # warm the pool up
            started = time.perf_counter()
            tokens = [client.start(query) for _ in range(TASKS_PER_RUN)]
            for token in tokens:
                while client.status(token)["status"] not in ("completed", "error"):
                    time.sleep(0.25)
            return TASKS_PER_RUN / (time.perf_counter() - started) * 60
    finally:
        server.stop()


def main() -> None:
    clip = source()
    rows: list[str] = []
    with bare_api() as bare:
        bare_rps = wrk(f"{bare}/v1/status", STATUS_LUA % ("0" * 32), 32)
    with postgres_server() as pg, redis_server() as redis, s3_server() as s3:
        engines = Engines(pg, redis, s3)

        def fresh(name: str) -> dict[str, str]:
            """Settings of a new, empty instance: a new database, Redis db and bucket."""
            return {} if name == "embedded" else engines.settings()

        results: dict[str, dict[str, Any]] = {}
        for name in ("embedded", "distributed"):
            results[name] = {
                "status": status_rps(fresh(name), name),
                "start": start_rate(fresh(name), name, clip),
                "tpm": {w: tasks_per_minute(fresh(name), name, w, clip) for w in (1, 2, 4)},
            }
    rows += [
        f"| `/v1/status` req/s (wrk, 32 connections) | {results['embedded']['status']:.0f} "
        f"({results['embedded']['status'] / bare_rps:.0%} of bare) | "
        f"{results['distributed']['status']:.0f} "
        f"({results['distributed']['status'] / bare_rps:.0%} of bare) |",
        f"| `start_encode2` accepted per second (16 connections, `qthumb api` alone) | "
        f"{results['embedded']['start'][0]:.0f} | {results['distributed']['start'][0]:.0f} |",
    ]
    for w in (1, 2, 4):
        rows.append(
            f"| tasks per minute, `--workers {w}` | {results['embedded']['tpm'][w]:.0f} | "
            f"{results['distributed']['tpm'][w]:.0f} |"
        )
    section = "\n".join([
        MARK_START,
        "### Backends: embedded (SQLite, huey on SQLite, data dir) and distributed "
        "(PostgreSQL 15, Redis, S3 on moto), one run",
        "",
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} by `bench/backends.py`, "
        f"{os.cpu_count()} cores. Bare FastAPI endpoint reading the same form: "
        f"**{bare_rps:.0f} req/s** (the ceiling on "
        "this machine). Tasks: a 320-px thumbnail and a 10-tile sprite of a 60-second 720p "
        "clip (synthetic `testsrc2`), 60 tasks a run after one warm-up task.",
        "",
        "| measure | embedded | distributed |",
        "|---|---:|---:|",
        *rows,
        MARK_END,
    ])  # fmt: skip
    print(section)
    write_section(section, MARK_START, MARK_END)


if __name__ == "__main__":
    main()
