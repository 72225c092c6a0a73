"""The names of things in a query and its results: the outputs Qencode documents (``Output``),
the status arrays their entries go in (``Array``), and a video kind's codecs (``Codecs``).
Each spec class of ``app.qencode.formats`` says which are its own."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Output(StrEnum):
    """Every output Qencode documents (docs/outputs.md), by its name in a query."""

    THUMBNAIL = "thumbnail"
    THUMBNAILS = "thumbnails"
    MP4 = "mp4"
    WEBM = "webm"
    GIF = "gif"
    METADATA = "metadata"
    ADVANCED_HLS = "advanced_hls"
    ADVANCED_DASH = "advanced_dash"
    WEBM_DASH = "webm_dash"
    REPACK = "repack"
    VMAF = "vmaf"
    MP3 = "mp3"
    HLS_AUDIO = "hls_audio"
    FLAC = "flac"
    SPEECH_TO_TEXT = "speech_to_text"


class Array(StrEnum):
    """The status array an output's entries go in (docs/compatibility.md)."""

    IMAGES = "images"
    VIDEOS = "videos"
    AUDIOS = "audios"
    TEXTS = "texts"


@dataclass(frozen=True)
class Codecs:
    """A video kind's encoding: its default video codec, the ones a query may pick, its
    audio codec and the file's content type."""

    video: str
    allowed: frozenset[str]
    audio: str
    content_type: str
