"""What operators and orchestrators ask of a running qthumb: is the process alive (``/healthz``),
can it work (``/readyz``: database, queue and storage reachable, and what failed), and what is
it doing (``/metrics``, Prometheus text)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from qthumb.app.metrics import StateCollector, exposition
from qthumb.app.tasks.backends import Backends

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    backends: Backends = request.app.state.backends
    checks = await run_in_threadpool(backends.check)
    ready = all(result == "ok" for result in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    backends: Backends = request.app.state.backends
    collector = StateCollector(backends.store.count_by_status, backends.queue.depth)
    text = await run_in_threadpool(exposition, collector)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
