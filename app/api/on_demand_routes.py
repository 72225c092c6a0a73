"""``GET /v1/thumbnail.{jpg,png,webp}?task_token=T&time=…&width=…&height=…&fit=scale|crop``:
the frame of task T's source at ``time`` (seconds, ``12.5``, or a percent, ``50%``; the middle
when absent), made on demand by the frame server (``app.api.on_demand`` says how and why).

The task token is the capability, as for ``/v1/status``. Answers carry ``ETag`` and
``Cache-Control``; ``If-None-Match`` gets 304. Errors are Qencode's JSON shape with a real HTTP
status (an ``<img>`` must not take an error for a picture).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from qthumb.app.api.errors import BadToken, FieldRequired, TokenNotFound
from qthumb.app.api.on_demand import (
    FrameRequest,
    FrameRequestError,
    OnDemand,
    parse_side,
    parse_time,
)
from qthumb.app.qencode.query import ResizeMode
from qthumb.app.qencode.query_values import IMAGE_EXTENSIONS
from qthumb.app.tasks.model import TaskStatus, is_token

router = APIRouter()
CACHE_CONTROL = "private, max-age=86400"


def frames(request: Request) -> OnDemand:
    """This API process's frames on demand (their frame server starts on first use)."""
    on_demand: OnDemand = request.app.state.on_demand
    return on_demand


def _request(ext: str, request: Request) -> FrameRequest:
    params = request.query_params
    fit = params.get("fit") or "scale"
    if fit not in ("scale", "crop"):
        raise FrameRequestError(f"fit must be scale or crop, not {fit[:40]!r}")
    seconds, fraction = parse_time(params.get("time"))
    return FrameRequest(
        seconds=seconds,
        fraction=fraction,
        width=parse_side(params.get("width"), "width"),
        height=parse_side(params.get("height"), "height"),
        fit=ResizeMode(fit),
        image_format=IMAGE_EXTENSIONS[ext],
    )


@router.get("/v1/thumbnail.{ext}", response_model=None)
async def thumbnail(ext: str, request: Request) -> Response:
    if ext not in IMAGE_EXTENSIONS:
        raise FrameRequestError("thumbnails are .jpg, .png, .webp or .avif", status=404)
    token = request.query_params.get("task_token") or ""
    if not token:
        raise FieldRequired("task_token", "task_token is required", http_status=400)
    if not is_token(token):
        raise BadToken("Bad task_token", http_status=400)
    wanted = _request(ext, request)
    service = frames(request)
    frame = service.cached(token, wanted)
    if frame is None:
        store = request.app.state.store
        task = await run_in_threadpool(store.get, token)
        if task is None:
            raise TokenNotFound(http_status=404)
        if task.status is TaskStatus.CREATED or not task.query:
            raise FrameRequestError("the task has not been started: it has no source yet", 409)
        frame = await service.run(service.render, token, task.source, wanted, store.upload_owner)
    headers = {"ETag": frame.etag, "Cache-Control": CACHE_CONTROL,
               "X-Frame-Time": f"{frame.time:.6f}"}  # fmt: skip
    if request.headers.get("if-none-match") == frame.etag:
        return Response(status_code=304, headers=headers)
    return Response(frame.data, media_type=frame.content_type, headers=headers)
