"""``output: "metadata"``: what the source is, as ffprobe's JSON (``-show_format
-show_streams``), the shape Qencode's metadata output has (its ``metadata_version`` is the
ffprobe version it mimics). Read with PyAV from the container, no decoding beyond the headers;
stored as ``metadata.json`` and reported in ``videos[]``, where the SDKs' ``get_metadata``
looks for its URL."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from qthumb.app.tasks.results import EntryType
from qthumb.workers.failures import MediaError
from qthumb.workers.media.probe import open_media
from qthumb.workers.outputs.products import Product

NAME = "metadata.json"


def _ratio(value: Fraction | None) -> str:
    return f"{value.numerator}/{value.denominator}" if value else "0/0"


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:.6f}"


def _tags(metadata: dict[str, str]) -> dict[str, str]:
    return {str(k): str(v) for k, v in metadata.items()}


def _stream(stream: Any) -> dict[str, Any]:
    ctx = stream.codec_context
    tb = stream.time_base
    entry: dict[str, Any] = {
        "index": stream.index,
        "codec_name": ctx.name if ctx else None,
        "codec_long_name": ctx.codec.long_name if ctx else None,
        "codec_type": stream.type,
        "codec_tag_string": stream.codec_tag or "",
        "time_base": _ratio(tb),
        "start_pts": stream.start_time,
        "start_time": _seconds(
            float(stream.start_time * tb) if stream.start_time is not None and tb else None
        ),
        "duration_ts": stream.duration,
        "duration": _seconds(float(stream.duration * tb) if stream.duration and tb else None),
        "bit_rate": str(ctx.bit_rate) if ctx and ctx.bit_rate else None,
        "nb_frames": str(stream.frames) if stream.frames else None,
        "tags": _tags(stream.metadata),
    }
    if stream.type == "video":
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        entry.update(
            width=ctx.width,
            height=ctx.height,
            coded_width=ctx.coded_width,
            coded_height=ctx.coded_height,
            pix_fmt=ctx.pix_fmt,
            profile=ctx.profile,
            level=getattr(ctx, "level", None),
            r_frame_rate=_ratio(stream.base_rate or stream.guessed_rate),
            avg_frame_rate=_ratio(stream.average_rate),
            sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}" if sar else "1:1",
            display_aspect_ratio=_dar(ctx.width, ctx.height, sar),
            color_range=_name(getattr(ctx, "color_range", None)),
            color_space=_name(getattr(ctx, "colorspace", None)),
            color_primaries=_name(getattr(ctx, "color_primaries", None)),
            color_transfer=_name(getattr(ctx, "color_trc", None)),
        )
    elif stream.type == "audio":
        entry.update(
            sample_fmt=ctx.format.name if ctx.format else None,
            sample_rate=str(ctx.sample_rate),
            channels=ctx.channels,
            channel_layout=ctx.layout.name if ctx.layout else None,
        )
    return {k: v for k, v in entry.items() if v is not None}


def _name(value: object) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "name", value)).lower()


def _dar(width: int, height: int, sar: Fraction | None) -> str | None:
    if not width or not height:
        return None
    ratio = Fraction(width, height) * (sar or Fraction(1))
    return f"{ratio.numerator}:{ratio.denominator}"


def describe(path: Path) -> dict[str, Any]:
    """ffprobe-shaped ``{"streams": [...], "format": {...}}`` of a local media file."""
    container = open_media(path)
    with container:
        duration = container.duration / av.time_base if container.duration else None
        start = container.start_time / av.time_base if container.start_time else 0.0
        size = path.stat().st_size
        return {
            "streams": [_stream(s) for s in container.streams],
            "format": {
                "filename": path.name,
                "nb_streams": len(container.streams),
                "format_name": container.format.name,
                "format_long_name": container.format.long_name,
                "start_time": _seconds(start),
                "duration": _seconds(duration),
                "size": str(size),
                "bit_rate": str(container.bit_rate) if container.bit_rate else None,
                "probe_score": 100,
                "tags": _tags(container.metadata),
            },
        }


def make_metadata(source: Path, out_dir: Path) -> list[Product]:
    try:
        described = describe(source)
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(f"the source's metadata could not be read ({exc})") from None
    path = out_dir / NAME
    path.write_text(json.dumps(described, indent=2), encoding="utf-8")
    return [
        Product(
            path=path,
            name=NAME,
            kind=EntryType.METADATA,
            content_type="application/json",
            size=path.stat().st_size,
        )
    ]
