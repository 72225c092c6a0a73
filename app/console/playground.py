"""The console's playground (``/ui/playground``): a form that builds a ``start_encode2`` query,
shows it as JSON and as curl (checked by the same parser as the API as it is typed), runs it
for the signed-in key and opens its task page. Uploads go over tus to the task's upload URL,
as the SDKs send them, and the query then names ``tus:<uuid>``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from qthumb.app.api.service import QencodeService
from qthumb.app.console.auth import Session, check_csrf, current_session
from qthumb.app.console.routes import page
from qthumb.app.console.views import curl_script
from qthumb.app.errors import QencodeError
from qthumb.app.qencode.query import decode_query, parse_query
from qthumb.app.storage.media_files import list_media
from qthumb.app.tasks.model import TaskStatus
from qthumb.app.tokens import is_token

router = APIRouter()


def as_wrapped(query: str) -> str:
    """The playground's query (the inner object, or already wrapped) as start_encode2 wants it,
    ``{"query": {…}}``; text that is no JSON object goes as it is, for its error."""
    try:
        value = json.loads(query)
    except (ValueError, RecursionError):
        return query
    if isinstance(value, dict) and "query" not in value:
        return json.dumps({"query": value})
    return query


def default_query(media: list[str]) -> str:
    query = {
        "source": media[0] if media else "https://example.com/video.mp4",
        "format": [
            {"output": "thumbnail", "time": 0.5, "width": 320},
            {"output": "thumbnails", "interval": 1, "sprite": 1, "columns": 5, "width": 160},
        ],
    }
    return json.dumps(query, indent=2)


def _form_page(
    request: Request,
    session: Session,
    query: str,
    payload: str | None,
    error: str | None,
    status_code: int = 200,
) -> Response:
    settings = request.app.state.settings
    media = list_media(list(settings.local_source_dirs))
    query = query or default_query(media)
    curl = curl_script(settings.base_url, query, payload)
    return page(
        request,
        "playground.html",
        status_code,
        session=session,
        active="playground",
        media=media,
        query=query,
        error=error,
        curl=curl,
    )


@router.get("/ui/playground", include_in_schema=False)
async def playground(request: Request) -> Response:
    session = await current_session(request)
    return await run_in_threadpool(_form_page, request, session, "", None, None)


@router.post("/ui/playground/preview", include_in_schema=False)
async def preview(request: Request) -> Response:
    """The curl for a query as it is typed, and what the API would say is wrong with it."""
    session = await current_session(request)
    check_csrf(session, request.headers.get("x-csrf"))
    body: Any = await request.json()
    query = str(body.get("query", "")) if isinstance(body, dict) else ""
    payload = body.get("payload") if isinstance(body, dict) else None
    error = None
    try:
        parse_query(decode_query(query, wrapped=False))
    except QencodeError as exc:
        error = exc.message
    settings = request.app.state.settings
    curl = curl_script(settings.base_url, query, payload if isinstance(payload, str) else None)
    return JSONResponse({"curl": curl, "error": error}, headers={"Cache-Control": "no-store"})


@router.post("/ui/playground/task", include_in_schema=False)
async def new_task(request: Request) -> Response:
    """A task to upload into before it starts: its token and tus upload URL."""
    session = await current_session(request)
    check_csrf(session, request.headers.get("x-csrf"))
    service: QencodeService = request.app.state.service
    answer = await run_in_threadpool(service.create_task, session.token)
    token = answer["task_token"]
    return JSONResponse({"task_token": token, "upload_url": f"{answer['upload_url']}/{token}"})


@router.post("/ui/playground", include_in_schema=False)
async def run(request: Request) -> Response:
    session = await current_session(request)
    form = await request.form()
    check_csrf(session, form.get("csrf"))
    query = str(form.get("query") or "")
    payload = str(form.get("payload") or "") or None
    token = str(form.get("task_token") or "")
    service: QencodeService = request.app.state.service

    def start() -> str:
        task_token = token
        if task_token:  # made by the page for an upload: it must be this key's, not started
            task = request.app.state.store.get(task_token) if is_token(task_token) else None
            if task is None or task.api_key != session.api_key:
                raise QencodeError("that task is not one of this key's")
            if task.status is not TaskStatus.CREATED:
                raise QencodeError("that task has already started")
        else:
            task_token = service.create_task(session.token)["task_token"]
        service.start_encode2(task_token, as_wrapped(query), payload)
        return task_token

    try:
        started = await run_in_threadpool(start)
    except QencodeError as exc:
        return await run_in_threadpool(
            _form_page, request, session, query, payload, exc.message, 400
        )
    return RedirectResponse(f"/ui/tasks/{started}", status_code=303)
