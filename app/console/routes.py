"""The web console, ``/ui/``: sign-in, a key's tasks (live), a task's page (its pictures, a
player with the task's seek-bar preview, callbacks, curl) and the playground
(``app.console.playground``). Server-rendered HTML (Jinja2, autoescaped) with small scripts of
our own in ``app/console/static``; no CDN, so it works offline. Every page but sign-in needs a
session (``app.console.auth``) and shows only the signed-in key's tasks.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from qthumb.app.api.key_guard import client_address
from qthumb.app.api.service import QencodeService
from qthumb.app.console.auth import (
    SIGNIN_PATH,
    BadCsrf,
    Session,
    check_csrf,
    check_signin_csrf,
    clear_cookie,
    current_session,
    new_signin_nonce,
    server_secret,
    set_cookie,
    set_signin_cookie,
    signin_csrf,
)
from qthumb.app.console.views import curl_script, task_view
from qthumb.app.errors import QencodeError, TooManyKeyAttempts
from qthumb.app.on_demand.asks import FrameRequestError
from qthumb.app.on_demand.service import OnDemand
from qthumb.app.tasks.model import TaskRecord, TaskStatus
from qthumb.app.tokens import is_token

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter()
PAGE_SIZE = 25


def static_app() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob: http: https:; "
        "media-src 'self' blob: http: https:; connect-src 'self' http: https:; "
        "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    )
    return response


async def console_error(request: Request, exc: Exception) -> Response:
    """No session: pages go to sign-in; fragments and JSON get 401. Bad CSRF: 403."""
    if isinstance(exc, BadCsrf):
        return Response("the form is stale: reload the page", status_code=403)
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/ui/signin", status_code=303)
    return Response("sign in first", status_code=401)


@router.get("/", include_in_schema=False)
async def root() -> Response:
    return RedirectResponse("/ui/", status_code=307)


def signin_page(request: Request, status_code: int = 200, error: str | None = None) -> Response:
    nonce = new_signin_nonce()
    token = signin_csrf(server_secret(request.app.state.service.api_keys), nonce)
    response = page(request, "signin.html", status_code, session=None, error=error, csrf=token)
    set_signin_cookie(response, request, nonce)
    return response


@router.get(SIGNIN_PATH, include_in_schema=False)
async def signin_form(request: Request) -> Response:
    return signin_page(request)


@router.post(SIGNIN_PATH, include_in_schema=False)
async def signin(request: Request) -> Response:
    form = await request.form()
    service: QencodeService = request.app.state.service
    check_signin_csrf(request, server_secret(service.api_keys), form.get("csrf"))
    try:
        answer = await run_in_threadpool(
            service.access_token, str(form.get("api_key") or ""), client_address(request)
        )
    except TooManyKeyAttempts as exc:
        response = signin_page(request, 429, exc.message)
        response.headers.update(exc.headers())
        return response
    except QencodeError as exc:
        return signin_page(request, 401, exc.message)
    response = RedirectResponse("/ui/", status_code=303)
    set_cookie(
        response, request, answer["token"], int(request.app.state.settings.session_token_ttl)
    )
    return response


@router.post("/ui/signout", include_in_schema=False)
async def signout(request: Request) -> Response:
    session = await current_session(request)
    check_csrf(session, (await request.form()).get("csrf"))
    await run_in_threadpool(request.app.state.store.end_session, session.token)
    response = RedirectResponse("/ui/signin", status_code=303)
    clear_cookie(response)
    return response


def _listing(request: Request, session: Session) -> dict[str, Any]:
    params = request.query_params
    status = params.get("status") or None
    state = TaskStatus(status) if status in {s.value for s in TaskStatus} else None
    number = params.get("page", "1")
    current = max(1, int(number)) if number.isdigit() and len(number) < 7 else 1
    tasks, total = request.app.state.store.recent(
        session.api_key, state, PAGE_SIZE, (current - 1) * PAGE_SIZE
    )
    now = time.time()
    return _list_context(session, [_row(t, now) for t in tasks], total, current, state)


def _list_context(
    session: Session,
    rows: list[dict[str, Any]],
    total: int,
    current: int,
    state: TaskStatus | None,
) -> dict[str, Any]:
    """What tasks.html and task_rows.html show: one page of rows, and the filter."""
    return {
        "session": session,
        "tasks": rows,
        "total": total,
        "page": current,
        "pages": max(1, math.ceil(total / PAGE_SIZE)),
        "status": state.value if state else None,
        "states": [s.value for s in TaskStatus],
        "active": "tasks",
    }


def _row(task: TaskRecord, now: float) -> dict[str, Any]:
    formats = task.query_object().get("format")
    formats = [formats] if isinstance(formats, dict) else formats or []
    outputs = ", ".join(str(f.get("output")) for f in formats if isinstance(f, dict))
    return {
        "token": task.token,
        "status": task.status.value,
        "percent": 100.0 if task.status is TaskStatus.COMPLETED else task.percent,
        "source": task.source,
        "outputs": outputs or "—",
        "age": _age(now - task.created_at),
        "error": task.error_description if task.status is TaskStatus.ERROR else None,
    }


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


@router.get("/ui/", include_in_schema=False)
async def tasks_page(request: Request) -> Response:
    session = await current_session(request)
    context = await run_in_threadpool(_listing, request, session)
    return page(request, "tasks.html", **context)


@router.get("/ui/rows", include_in_schema=False)
async def task_rows(request: Request) -> Response:
    """The list's rows alone, which the page fetches again every two seconds."""
    session = await current_session(request)
    context = await run_in_threadpool(_listing, request, session)
    return page(request, "task_rows.html", **context)


async def _own_task(request: Request, session: Session, token: str) -> TaskRecord | None:
    """The task if it is the signed-in key's; another key's task is as good as unknown."""
    if not is_token(token):
        return None
    task: TaskRecord | None = await run_in_threadpool(request.app.state.store.get, token)
    return task if task is not None and task.api_key == session.api_key else None


def _not_found(request: Request, session: Session) -> Response:
    """An unknown task, or another key's: the task list, empty, with 404."""
    return page(request, "tasks.html", 404, **_list_context(session, [], 0, 1, None))


@router.get("/ui/tasks/{token}", include_in_schema=False)
async def task_page(request: Request, token: str) -> Response:
    session = await current_session(request)
    task = await _own_task(request, session, token)
    if task is None:
        return _not_found(request, session)
    settings = request.app.state.settings
    view = await run_in_threadpool(
        task_view, task, settings, request.app.state.files, request.app.state.outbox
    )
    curl = curl_script(settings.base_url, task.query or "{}", task.payload)
    return page(request, "task.html", session=session, active="tasks", curl=curl, **view)


@router.get("/ui/tasks/{token}/state", include_in_schema=False)
async def task_state(request: Request, token: str) -> Response:
    session = await current_session(request)
    task = await _own_task(request, session, token)
    if task is None:
        return Response(status_code=404)
    body = {"status": task.status.value, "percent": task.percent}
    return Response(
        json.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@router.get("/ui/tasks/{token}/source", include_in_schema=False)
async def task_source(request: Request, token: str) -> Response:
    """The task's source for the player (Range requests answered), fetched once per machine
    into the same cache as thumbnails on demand."""
    session = await current_session(request)
    task = await _own_task(request, session, token)
    if task is None or not task.query:
        return Response(status_code=404)
    store = request.app.state.store
    on_demand: OnDemand = request.app.state.on_demand
    try:
        path = await on_demand.run(on_demand.source_path, token, task.source, store.upload_owner)
    except FrameRequestError as exc:  # the source is gone or refused: no player, not a 500
        return Response(f"the source cannot be played: {exc.message}", status_code=404)
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})
