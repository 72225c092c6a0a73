"""Temporary storage: results of tasks without a destination, served over HTTP
(docs/compatibility.md).

Only ``/storage/<task_token>/<index>/<file>`` answers; nothing lists a folder. Files come from
``app.storage.files`` (the data dir or a bucket): on this machine's disk through Starlette's
``FileResponse``; from a bucket streamed through the API with the same headers. Both answer a
single Range (players seek with them) and carry CORS headers so cross-origin players can read
sprites and VTT. A store that cannot say whether a file is there (down, throttling, refusing)
is answered 503 with ``Retry-After``, never 404: a 404 is a statement that the file is gone.

Streaming rather than redirecting to a presigned URL: the URL a task reports stays the same
whichever backend runs, the bucket need not be reachable by clients (an on-prem MinIO on a
private network), no credential-bearing URL is handed out, and CORS and TTL stay qthumb's.
"""

from __future__ import annotations

import logging
import mimetypes
import re

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from qthumb.app.storage.files import FileError, Files, result_path

log = logging.getLogger("qthumb.api")
router = APIRouter()
RETRY_AFTER = 5  # seconds a client waits before asking again when the store is down

CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".vtt": "text/vtt; charset=utf-8",
    ".json": "application/json",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Content-Range"}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for a single ``bytes=`` range; ``None`` for the whole file.
    Several ranges are answered with the whole file, as RFC 9110 allows. ``ValueError`` when
    the range cannot be satisfied."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ValueError("range past the end")
    return start, end


@router.get("/storage/{token}/{index}/{filename}")
async def stored_file(request: Request, token: str, index: str, filename: str) -> Response:
    key = result_path(token, index, filename)
    if key is None:
        raise HTTPException(status_code=404)
    files: Files = request.app.state.files
    try:
        stored = await run_in_threadpool(files.results.stat, key)
    except FileError as exc:  # the store could not say: not "not there"
        log.warning("storage %s: %s", key, exc)
        return JSONResponse(
            {"error": 1, "message": "the result store is unavailable; try again"},
            status_code=503,
            headers={**CORS, "Retry-After": str(RETRY_AFTER)},
        )
    if stored is None:
        raise HTTPException(status_code=404)
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    media_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(filename)[0]
    media_type = media_type or "application/octet-stream"
    if stored.local_path is not None:
        return FileResponse(stored.local_path, media_type=media_type, headers=CORS)
    try:
        span = byte_range(request.headers.get("range"), stored.size)
    except ValueError:
        return Response(
            status_code=416, headers={**CORS, "Content-Range": f"bytes */{stored.size}"}
        )
    start, end = span or (0, stored.size - 1)
    headers = {**CORS, "Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{stored.size}"
    if stored.size == 0:
        return Response(b"", media_type=media_type, headers={**headers, "Content-Length": "0"})
    chunks = files.results.open(key, start, end)
    return StreamingResponse(
        chunks, status_code=206 if span else 200, media_type=media_type, headers=headers
    )
