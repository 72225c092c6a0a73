"""Operations: /healthz, /readyz (and what failed), Prometheus /metrics from the API and from a
worker pool alone, and JSON log lines carrying the task token."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from qthumb.app.settings import SPARE_WORKERS
from tests.conftest import API_KEY, QthumbProcess, eventually, free_port, make_qthumb
from tests.qclient import QClient


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a Prometheus exposition, or None."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$"
    for match in re.finditer(pattern, text, re.M):
        if not labels or set(wanted.split(",")) <= set((match.group(1) or "").split(",")):
            return float(match.group(2))
    return None


def test_health_and_readiness(client: QClient, qthumb: QthumbProcess):
    assert client.http.get("/healthz").json() == {"status": "ok"}
    ready = client.http.get("/readyz")
    assert ready.status_code == 200, ready.text
    checks = {"database": "ok", "queue": "ok", "storage": "ok"}
    assert ready.json() == {"status": "ready", "checks": checks}


def test_metrics_count_tasks_stages_requests_and_workers(
    client: QClient, qthumb: QthumbProcess, clips: Path
):
    formats = [{"output": "thumbnail"}, {"output": "thumbnails", "interval": 2, "sprite": 1}]
    status = client.run({"source": str(clips / "testsrc.mp4"), "format": formats})
    assert status["status"] == "completed"
    text = client.http.get("/metrics").text
    assert (metric(text, "qthumb_tasks", state="completed") or 0) >= 1
    assert metric(text, "qthumb_tasks", state="queued") is not None
    assert metric(text, "qthumb_queue_depth") is not None
    assert (metric(text, "qthumb_task_seconds_count", outcome="completed") or 0) >= 1
    for stage in ("download", "probe", "encode", "save"):
        assert (metric(text, "qthumb_stage_seconds_count", stage=stage) or 0) >= 1, stage
    assert (metric(text, "qthumb_stored_bytes_total") or 0) > 0
    assert (metric(text, "qthumb_api_requests_total", endpoint="status", code="200") or 0) >= 1
    # the pool `serve` runs beside the API: its two workers and the spare
    assert metric(text, "qthumb_worker_processes") == 2 + SPARE_WORKERS
    assert metric(text, "qthumb_worker_processes_busy") == 0


def test_readyz_names_what_is_unreachable(tmp_path: Path, clips: Path):
    closed = free_port()  # nothing listens here
    server = make_qthumb(tmp_path, clips, QTHUMB_QUEUE_URL=f"redis://127.0.0.1:{closed}/0")
    try:
        server.listen("api")
        reply = httpx.get(f"{server.base_url}/readyz", timeout=30)
        assert reply.status_code == 503
        body = reply.json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"] == "ok" and body["checks"]["storage"] == "ok"
        assert body["checks"]["queue"].startswith("ConnectionError")
    finally:
        server.stop()


def test_a_worker_pool_alone_serves_metrics_and_logs_json(tmp_path: Path, clips: Path):
    port = free_port()
    server = make_qthumb(tmp_path, clips, QTHUMB_METRICS_PORT=str(port), QTHUMB_LOG_FORMAT="json")
    try:
        server.listen("api")
        server.start("worker", "--workers", "2")

        def scraped() -> str | None:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                return None
            ready = metric(text, "qthumb_worker_processes") == 2 + SPARE_WORKERS
            return text if ready else None

        eventually(scraped, 30, lambda: f"no worker metrics: {server.logs()}")
        with QClient(server.base_url, API_KEY) as client:
            task = client.start({"source": str(clips / "testsrc.mp4"),
                                 "format": [{"output": "thumbnail"}]})  # fmt: skip
            assert client.wait(task)["status"] == "completed"
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert (metric(text, "qthumb_task_seconds_count", outcome="completed") or 0) >= 1
        lines = [json.loads(line) for line in (server.data_dir / "worker.log").read_text()
                 .splitlines() if line.startswith("{")]  # fmt: skip
        assert lines and all({"time", "level", "logger", "message"} <= set(e) for e in lines)
        about = [e for e in lines if e.get("task") == task]
        assert any("completed" in e["message"] for e in about), about
    finally:
        server.stop()
