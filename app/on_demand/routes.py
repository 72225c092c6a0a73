"""Images by URL, made on demand by the frame server (``app.on_demand.service`` says how and
why) and kept in memory; the task token is the capability, as for ``/v1/status``:

- ``GET /v1/thumbnail.{jpg,png,webp,avif}?task_token=T&time=…&width&height&fit=scale|crop|pad
  &pad_color&rotate&placeholder=blurhash|thumbhash``: the frame of task T's source at ``time``
  (seconds, ``12.5``, or a percent, ``50%``; the middle when absent); its placeholder, when
  asked for, in the ``X-Placeholder`` header;
- ``GET /v1/storyboard.{vtt,json}?task_token=T&width&columns&interval&format=jpg|webp``: the
  WebVTT (or JSON) of sprite sheets served at ``/v1/storyboard.{jpg,webp}?…&sheet=N``, the
  files a ``thumbnails`` task with ``sprite: 1, storyboard: 1`` and those fields stores;
- ``GET /v1/animated.{gif,webp}?task_token=T&start&end&fps&width&height``: the ``gif`` a task
  with those fields stores;
- ``GET /v1/trickplay.{m3u8,mpd,bif}?task_token=T&width&columns&interval``: the storyboard's
  JPEG sheets as an HLS image media playlist (``&multivariant=1``: the multivariant playlist with
  its ``EXT-X-IMAGE-STREAM-INF`` line) or an MPD holding the DASH image AdaptationSet, the
  sheets named by absolute URL (``app.qencode.trickplay`` writes both, as a task's); or its
  tiles as a Roku BIF.

Answers carry ``ETag`` and ``Cache-Control``; ``If-None-Match`` gets 304. Errors are Qencode's
JSON shape with a real HTTP status (an ``<img>`` must not take an error for a picture).
"""

from __future__ import annotations

import json
from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from qthumb.app.errors import BadToken, FieldRequired, TokenNotFound
from qthumb.app.on_demand.asks import (
    FrameRequestError,
    RenderedFrame,
    animated_request,
    frame_request,
    sheet_index,
    storyboard_request,
)
from qthumb.app.on_demand.asks import Request as Asked
from qthumb.app.on_demand.service import OnDemand
from qthumb.app.qencode.fields.values import IMAGE_EXTENSIONS, ImageFormat
from qthumb.app.qencode.trickplay import (
    HLS_TYPE,
    SheetTrack,
    dash_adaptation_set,
    hls_image_stream,
    hls_media_playlist,
    tile_problem,
    trickplay_mpd,
)
from qthumb.app.tasks.model import TaskStatus
from qthumb.app.tokens import is_token

router = APIRouter()
CACHE_CONTROL = "private, max-age=86400"
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "X-Frame-Time"}
STORYBOARD_TYPES = {"vtt": "text/vtt; charset=utf-8", "json": "application/json"}


def frames(request: Request) -> OnDemand:
    """This API process's frames on demand (their frame server starts on first use)."""
    on_demand: OnDemand = request.app.state.on_demand
    return on_demand


def _token(request: Request) -> str:
    token = request.query_params.get("task_token") or ""
    if not token:
        raise FieldRequired("task_token", "task_token is required", http_status=400)
    if not is_token(token):
        raise BadToken("Bad task_token", http_status=400)
    return token


async def _made(request: Request, token: str, asked: Asked, piece: str = "") -> RenderedFrame:
    """From this process's memory when made before, else from the frame server."""
    service = frames(request)
    made = service.cached(token, asked, piece)
    if made is None:
        store = request.app.state.store
        task = await run_in_threadpool(store.get, token)
        if task is None:
            raise TokenNotFound(http_status=404)
        if task.status is TaskStatus.CREATED or not task.query:
            raise FrameRequestError("the task has not been started: it has no source yet", 409)
        made = await service.run(
            service.render, token, task.source, asked, store.upload_owner, task.api_key, piece
        )
    return made


def _answer(request: Request, made: RenderedFrame, headers: dict[str, str]) -> Response:
    # readable by a player on another origin (Shaka fetches sheets and playlists), as
    # /storage's files are: the task token in the URL is the capability, no cookie is read
    headers = {"ETag": made.etag, "Cache-Control": CACHE_CONTROL, **CORS, **headers}
    if request.headers.get("if-none-match") == made.etag:
        return Response(status_code=304, headers=headers)
    return Response(made.data, media_type=made.content_type, headers=headers)


@router.get("/v1/thumbnail.{ext}", response_model=None)
async def thumbnail(ext: str, request: Request) -> Response:
    if ext not in IMAGE_EXTENSIONS:
        raise FrameRequestError("thumbnails are .jpg, .png, .webp or .avif", status=404)
    token = _token(request)
    made = await _made(request, token, frame_request(ext, request.query_params))
    headers = {"X-Frame-Time": f"{made.time or 0.0:.6f}"}
    if made.placeholder is not None:
        headers["X-Placeholder"] = made.placeholder
    return _answer(request, made, headers)


@router.get("/v1/storyboard.{ext}", response_model=None)
async def storyboard(ext: str, request: Request) -> Response:
    if ext not in ("vtt", "json", "jpg", "webp"):
        raise FrameRequestError("storyboards are .vtt, .json, .jpg or .webp", status=404)
    token = _token(request)
    asked = storyboard_request(ext, request.query_params)
    piece = ext if ext in STORYBOARD_TYPES else f"sheet{sheet_index(request.query_params)}"
    made = await _made(request, token, asked, piece)
    return _answer(request, made, {})


@router.get("/v1/animated.{ext}", response_model=None)
async def animated(ext: str, request: Request) -> Response:
    if ext not in ("gif", "webp"):
        raise FrameRequestError("animations are .gif or .webp", status=404)
    token = _token(request)
    made = await _made(request, token, animated_request(ext, request.query_params))
    return _answer(request, made, {})


@router.get("/v1/trickplay.{ext}", response_model=None)
async def trickplay(ext: str, request: Request) -> Response:
    if ext not in ("m3u8", "mpd", "bif"):
        raise FrameRequestError("trickplay by URL is .m3u8, .mpd or .bif", status=404)
    token = _token(request)
    asked = storyboard_request("json", request.query_params)
    if asked.image_format is not ImageFormat.JPG:
        raise FrameRequestError("HLS and DASH image tracks and BIF carry JPEG: format=jpg")
    too_wide = ext != "bif" and tile_problem(f"trickplay.{ext}", asked.width, None)
    if too_wide:  # refused before anything is decoded; a tall one once its height is known
        raise FrameRequestError(too_wide)
    if ext == "bif":  # the same storyboard made with its BIF (a piece of its own)
        bif = await _made(request, token, replace(asked, bif=True), "bif")
        return _answer(request, bif, {})
    service = frames(request)
    board = json.loads((await _made(request, token, asked, "json")).data)
    base = f"{service.settings.base_url}/v1/"
    urls = [base + sheet["url"] for sheet in board["sheets"]]
    sizes = []
    for n, sheet in enumerate(board["sheets"]):  # kept with the JSON when it was made
        kept = service.cached(token, asked, f"sheet{n}")
        sizes.append(len(kept.data) if kept else sheet["width"] * sheet["height"] // 4)
    too_large = tile_problem(f"trickplay.{ext}", board["tile_width"], board["tile_height"])
    if too_large:
        raise FrameRequestError(too_large)
    tiles = board["tiles"]
    per_sheet = board["columns"] * board["rows"]
    track = SheetTrack(
        urls,
        sizes,
        [tiles[n * per_sheet]["start"] for n in range(len(urls))],
        tiles[-1]["end"],
        (board["tile_width"], board["tile_height"]),
        board["columns"],
        board["rows"],
        tiles[0]["end"] - tiles[0]["start"],
    )
    if ext == "mpd":
        template = urls[0].rsplit("sheet=", 1)[0] + "sheet=$Number$"
        text = trickplay_mpd(dash_adaptation_set(track, template, start_number=0), track.end)
        made = RenderedFrame.of(text.encode(), "application/dash+xml")
    elif request.query_params.get("multivariant") == "1":
        playlist = f"{base}trickplay.m3u8?{request.url.query.replace('multivariant=1', '')}"
        made = RenderedFrame.of(hls_image_stream(track, playlist.rstrip("&")).encode(), HLS_TYPE)
    else:
        made = RenderedFrame.of(hls_media_playlist(track).encode(), HLS_TYPE)
    return _answer(request, made, {})
