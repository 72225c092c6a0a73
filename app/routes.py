"""The Qencode endpoints: read the form, call one ``QencodeService`` method, return its JSON.

Every ``QencodeError`` is rendered by ``qencode_error_handler`` with HTTP 200 (§11.10).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData

from app.errors import QencodeError
from app.service import QencodeService, split_task_tokens

router = APIRouter(prefix="/v1")


async def _form(request: Request) -> FormData:
    """Form fields, with query-string fields as a fallback (some scripts use ``?api_key=``)."""
    form = await request.form()
    merged = [*request.query_params.multi_items(), *form.multi_items()]
    return FormData(merged)


def _service(request: Request) -> QencodeService:
    service: QencodeService = request.app.state.service
    return service


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


@router.post("/access_token")
async def access_token(request: Request) -> dict[str, Any]:
    form = await _form(request)
    return _service(request).access_token(_text(form, "api_key"))


@router.post("/create_task")
async def create_task(request: Request) -> dict[str, Any]:
    form = await _form(request)
    return _service(request).create_task(_text(form, "token"))


@router.post("/start_encode2")
async def start_encode2(request: Request) -> dict[str, Any]:
    form = await _form(request)
    return _service(request).start_encode2(
        _text(form, "task_token"), _text(form, "query"), _text(form, "payload")
    )


@router.post("/start_encode")
async def start_encode(request: Request) -> dict[str, Any]:
    await _form(request)
    return _service(request).start_encode()


@router.post("/status")
async def status(request: Request) -> dict[str, Any]:
    form = await _form(request)
    single = [v for v in form.getlist("task_tokens") if isinstance(v, str)]
    bracketed = [v for v in form.getlist("task_tokens[]") if isinstance(v, str)]
    return _service(request).status(split_task_tokens(single, bracketed))


async def qencode_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QencodeError)
    return JSONResponse({"error": exc.code, "message": exc.message}, status_code=200)
