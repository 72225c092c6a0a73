"""Temporary storage: results of tasks without a destination, served over HTTP (§11.4).

Only ``/storage/<task_token>/<index>/<file>`` answers; nothing lists a folder. Files are
served by Starlette's ``FileResponse``, which answers Range requests.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from app.model import is_token

router = APIRouter()

_INDEX = re.compile(r"[0-9]{1,6}")  # ASCII digits: "²".isdigit() is true, int("²") fails
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".vtt": "text/vtt; charset=utf-8",
    ".json": "application/json",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Content-Range"}


@router.get("/storage/{token}/{index}/{filename}")
async def stored_file(request: Request, token: str, index: str, filename: str) -> FileResponse:
    if not (is_token(token) and _INDEX.fullmatch(index) and _FILE.fullmatch(filename)):
        raise HTTPException(status_code=404)
    root: Path = request.app.state.settings.storage_dir
    path = root / token / str(int(index)) / filename
    if not path.is_file():
        raise HTTPException(status_code=404)
    suffix = path.suffix.lower()
    media_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0]
    return FileResponse(path, media_type=media_type or "application/octet-stream", headers=CORS)
