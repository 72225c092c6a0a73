"""Storyboards and animations on demand (``/v1/storyboard.*``, ``/v1/animated.*``), made in the
frame server by the producers a task uses: the ``query.format[]`` entry a task would send is
built (``app.on_demand.asks``), parsed as a task's, checked against the same limits, and made
by ``make_thumbnails`` / ``make_gif`` in a scratch folder. So the sheets, the VTT's cues and
the animation are those a task with the same fields stores, byte for byte; only the sheets'
names differ (``make_thumbnails``' ``refer``): URLs here, relative to the VTT or JSON, as a
task's are relative to its folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from qthumb.app.errors import QencodeError
from qthumb.app.on_demand.asks import (
    MAX_PIXELS,
    MAX_STORYBOARD_TILES,
    AnimatedRequest,
    FrameRequestError,
    RenderedFrame,
    Storyboard,
    StoryboardRequest,
)
from qthumb.app.qencode.formats import GifSpec, SizedSpec, ThumbnailsSpec
from qthumb.app.qencode.query import Query, parse_format
from qthumb.app.settings import Settings
from qthumb.app.tasks.results import EntryType
from qthumb.workers.failures import FormatFailure, TaskFailure
from qthumb.workers.media.imaging import target_size
from qthumb.workers.media.probe import MediaInfo
from qthumb.workers.outputs.gif import make_gif
from qthumb.workers.outputs.series import frame_count, make_thumbnails
from qthumb.workers.tasks.limits import check_format, check_task


def _spec(fields: dict[str, object], kind: type[SizedSpec]) -> SizedSpec:
    try:
        spec = parse_format(fields)
    except QencodeError as exc:  # a field the URL gave, read as a task's would be
        raise FrameRequestError(exc.message.replace("query.format[0].", "")) from None
    if not isinstance(spec, kind):  # the entries are built here: cannot happen
        raise FrameRequestError(f"not a {kind.__name__}", status=500)
    return spec


def _check(spec: SizedSpec, source: Path, info: MediaInfo, settings: Settings) -> None:
    """The limits a task with this one format meets (``workers.tasks.limits``), and the
    frame size an image by URL may have; a breach is the request's error (400)."""
    width, height = target_size(info.display_size, spec.sizing)
    if width * height * spec.pixel_scale**2 > MAX_PIXELS:
        raise FrameRequestError(f"{width}x{height} is over {MAX_PIXELS} pixels a frame")
    try:
        check_task(Query(source=str(source), formats=(spec,)), info, settings)
        check_format(spec, info, settings)
    except (TaskFailure, FormatFailure) as exc:
        raise FrameRequestError(exc.description) from None


def _scratch(settings: Settings) -> tempfile.TemporaryDirectory[str]:
    folder = settings.data_dir / "cache"
    folder.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=folder, prefix=".made-")


def make_storyboard(
    source: Path, info: MediaInfo, request: StoryboardRequest, token: str, settings: Settings
) -> Storyboard:
    spec = _spec(request.format_fields(info.duration), ThumbnailsSpec)
    assert isinstance(spec, ThumbnailsSpec)
    tiles = frame_count(spec, info)
    if tiles > MAX_STORYBOARD_TILES:
        raise FrameRequestError(
            f"{tiles} tiles is over {MAX_STORYBOARD_TILES}, the most a storyboard by URL may "
            "have: ask for a longer interval"
        )
    _check(spec, source, info, settings)
    ext = spec.image_format.extension
    query = request.query(token)

    def url(sheet: int, _: str) -> str:
        return f"storyboard.{ext}?{query}&sheet={sheet}"

    with _scratch(settings) as work:
        made = make_thumbnails(
            source,
            info,
            spec,
            Path(work),
            lambda _: None,
            readers=settings.decode_budget,
            max_frames=settings.max_frames_per_task,
            max_pixels=settings.max_output_pixels,
            refer=url,
        )
        sheets = sorted((p for p in made if p.kind is EntryType.SPRITE), key=lambda p: p.name)
        return Storyboard(
            vtt=RenderedFrame.of(
                (Path(work) / spec.vtt_name).read_bytes(), "text/vtt; charset=utf-8"
            ),
            json=RenderedFrame.of(
                (Path(work) / spec.storyboard_name).read_bytes(), "application/json"
            ),
            sheets=tuple(RenderedFrame.of(p.path.read_bytes(), p.content_type) for p in sheets),
            bif=next(
                (
                    RenderedFrame.of(p.path.read_bytes(), p.content_type)
                    for p in made
                    if p.kind is EntryType.BIF
                ),
                None,
            ),
        )


def make_animated(
    source: Path, info: MediaInfo, request: AnimatedRequest, settings: Settings
) -> RenderedFrame:
    spec = _spec(request.format_fields(info.duration, info.display_size), GifSpec)
    assert isinstance(spec, GifSpec)
    _check(spec, source, info, settings)
    with _scratch(settings) as work:
        made = make_gif(source, info, spec, Path(work), lambda _: None, settings.video_timeout)
        return RenderedFrame.of(made[0].path.read_bytes(), made[0].content_type)
