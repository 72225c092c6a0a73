"""The fields an ``mp4``, ``webm`` or ``gif`` entry is made with (docs/outputs.md), read from the
format or its one ``stream[]`` entry: ``VideoSettings``, and what a video's ``file_extension`` may
say."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from qthumb.app.errors import BadQuery
from qthumb.app.qencode.fields.values import flag, opt_int

_FRAMERATE_RE = re.compile(r"^\d+(\.\d+)?(/\d+(\.\d+)?)?$")
_KEYFRAME_RE = re.compile(r"^\d+(\.\d+)?s?$")


@dataclass(frozen=True)
class VideoSettings:
    """``mp4`` / ``webm`` / ``gif`` fields (docs/outputs.md). ``quality`` is a CRF, not an image
    quality."""

    video_codec: str | None = None
    framerate: str | None = None
    keyframe: str | None = None  # frames ("50") or seconds ("2s")
    bitrate: int | None = None  # kbit/s
    quality: int | None = None
    audio_bitrate: int | None = None  # kbit/s
    audio: bool = True
    mute: bool = False  # audio_mute: the source's audio replaced by silence of its length


_STREAM_FIELDS = frozenset(
    {
        "size",
        "width",
        "height",
        "resolution",
        "resize_mode",
        "bitrate",
        "framerate",
        "keyframe",
        "video_codec",
        "quality",
        "audio_bitrate",
        "audio_disabled",
        "audio_mute",
        "rotate",
        "aspect_ratio",
        "logo",
        "deinterlace",
        "hdr_to_sdr",
    }
)


def one_stream(obj: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The fields a video is made with: the format's own, or its one ``stream[]`` entry's
    (Qencode's per-stream form: its fields win over the format's). qthumb makes one video
    stream per output: several are refused rather than silently reduced to one."""
    streams = obj.get("stream")
    if streams is None or streams == [] or streams == {}:
        return obj, path
    if isinstance(streams, dict):
        streams = [streams]
    if not isinstance(streams, list) or not all(isinstance(x, dict) for x in streams):
        raise BadQuery(f"{path}.stream must be a list of stream objects")
    if len(streams) > 1:
        raise BadQuery(
            f"{path}.stream has {len(streams)} streams; qthumb makes one stream per output: "
            "use one format per size"
        )
    # Fields qthumb does not read are left alone, as at the format's own level.
    chosen = {k: v for k, v in streams[0].items() if k in _STREAM_FIELDS}
    return {**obj, **chosen}, f"{path}.stream[0]"


def video_settings(obj: dict[str, Any], path: str) -> VideoSettings:
    codec = obj.get("video_codec")
    framerate = obj.get("framerate")
    if framerate not in (None, "") and not _FRAMERATE_RE.match(str(framerate).strip()):
        raise BadQuery(f"{path}.framerate must look like 25, 29.97 or 30000/1001")
    keyframe = obj.get("keyframe")
    if keyframe not in (None, "") and not _KEYFRAME_RE.match(str(keyframe).strip()):
        raise BadQuery(f"{path}.keyframe must be frames (50) or seconds (2s)")
    quality = opt_int(obj, "quality", path, minimum=0)
    if quality is not None and quality > 63:
        raise BadQuery(f"{path}.quality (CRF) must be between 0 and 63")
    audio = obj.get("audio_disabled")
    return VideoSettings(
        video_codec=None if codec in (None, "") else str(codec),
        framerate=None if framerate in (None, "") else str(framerate).strip(),
        keyframe=None if keyframe in (None, "") else str(keyframe).strip(),
        bitrate=opt_int(obj, "bitrate", path, minimum=1),
        quality=quality,
        audio_bitrate=opt_int(obj, "audio_bitrate", path, minimum=1),
        audio=not flag(audio, f"{path}.audio_disabled"),
        mute=flag(obj.get("audio_mute"), f"{path}.audio_mute"),
    )


def container_extension(obj: dict[str, Any], path: str, container: str) -> None:
    """``file_extension`` on a video or animation names its file, whose container the output
    decides: the same one is what Qencode's own examples send (no warning); another is
    refused, since the file made would not be what its name says."""
    value = obj.get("file_extension")
    if value is None or value == "":
        return
    if str(value).lower().strip().lstrip(".") != container:
        raise BadQuery(
            f"{path}.file_extension is {value!r}, but this output makes a .{container} file"
        )
