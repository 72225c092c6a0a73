"""What a task produced, as typed values: each stored file, each format that failed, and the
warnings. The pipeline returns these, the store keeps them (as this module's own JSON, not
Qencode's), and ``app.tasks.wire`` alone turns them into ``images[]``/``videos[]`` at the edge.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from qthumb.app.qencode.kinds import Array, Output
from qthumb.app.storage.objects import Location

# The JSON shape a row's ``outputs`` column holds. Rows written before it held Qencode's wire
# arrays (``images``, ``videos``, …): ``Results.from_json`` still reads those.
FORMAT_VERSION = 2


class EntryType(StrEnum):
    """What one stored file is: an ``images[]`` entry's ``type``, or a video's or gif's."""

    THUMBNAIL = "thumbnail"
    FRAME = "frame"  # one of a series of thumbnails
    SPRITE = "sprite"
    VTT = "vtt"
    STORYBOARD = "storyboard"
    METADATA = "metadata"
    VIDEO = "video"
    GIF = "gif"
    HLS = "hls"  # trickplay (app.qencode.trickplay): an HLS image playlist, or its stream line
    DASH = "dash"  # the DASH image AdaptationSet
    BIF = "bif"  # Roku's BIF archive
    CHAPTERS = "chapters"  # scenes: a WebVTT chapters track, a cue a shot

    @classmethod
    def read(cls, value: object, otherwise: EntryType) -> EntryType:
        """``value`` as stored in a row; ``otherwise`` for what rows before types held."""
        try:
            return cls(str(value))
        except ValueError:
            return otherwise


@dataclass(frozen=True)
class StoredFile:
    """One file of one format, stored in one destination."""

    index: int  # the format's place in query.format
    output: Output
    user_tag: str | None
    location: Location  # a path on the API (/storage/…) or an absolute URL
    storage: dict[str, Any] | None  # where it is, for S3 destinations (docs/compatibility.md)
    kind: EntryType
    size: int  # bytes
    width: int | None = None
    height: int | None = None
    time: float | None = None  # images: the frame's time in the source
    duration: float | None = None  # videos
    meta: dict[str, Any] | None = None  # videos: what the encoded file is
    placeholder: str | None = None  # images: its BlurHash/ThumbHash (qthumb's extension)
    score: float | None = None  # a ``smart: 1`` thumbnail: its frame's score, 0-1


@dataclass(frozen=True)
class FormatFailed:
    """A format that made nothing in one destination; the task's other formats still count."""

    index: int
    output: Output
    user_tag: str | None
    description: str


@dataclass
class Running:
    """A format being made (``state`` encoding) or stored (saving): its entry while the task
    runs, replaced by its files or its failure."""

    index: int
    output: Output
    user_tag: str | None
    state: str = "encoding"
    percent: float = 0.0  # of this format, 0-100


@dataclass(frozen=True)
class Notice:
    """A warning: something the user should know that did not fail the task."""

    message: str
    details: str
    tag: str

    def to_json(self) -> dict[str, str]:
        return {"message": self.message, "details": self.details, "tag": self.tag}


Made = StoredFile | FormatFailed | Running
_KEYS: dict[type[Any], str] = {StoredFile: "file", FormatFailed: "failed", Running: "running"}


@dataclass
class Results:
    made: list[Made] = field(default_factory=list)  # in the order they happened
    warnings: list[Notice] = field(default_factory=list)

    @property
    def files(self) -> list[StoredFile]:
        return [m for m in self.made if isinstance(m, StoredFile)]

    @property
    def failures(self) -> list[FormatFailed]:
        return [m for m in self.made if isinstance(m, FormatFailed)]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "made": [{_KEYS[type(m)]: asdict(m)} for m in self.made],
            "warnings": [w.to_json() for w in self.warnings],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        warnings = [_notice(w) for w in data.get("warnings") or [] if isinstance(w, dict)]
        if data.get("version") != FORMAT_VERSION:
            return cls(made=_from_wire(data), warnings=warnings)
        made: list[Made] = []
        for item in data.get("made") or []:
            if "file" in item:
                file = dict(item["file"])
                if "url" in file:  # rows written before locations: an absolute URL
                    file["location"] = {"url": file.pop("url")}
                file["location"] = Location.from_json(file["location"])
                file["kind"] = EntryType.read(file.get("kind"), EntryType.VIDEO)
                made.append(StoredFile(**{**file, "output": Output(file["output"])}))
            elif "running" in item:
                running = item["running"]
                made.append(Running(**{**running, "output": Output(running["output"])}))
            else:
                failed = item["failed"]
                made.append(FormatFailed(**{**failed, "output": Output(failed["output"])}))
        return cls(made=made, warnings=warnings)


def _notice(data: dict[str, Any]) -> Notice:
    return Notice(str(data.get("message", "")), str(data.get("details", "")), str(data.get("tag")))


_WIRE_TAG = re.compile(r"^[a-z]+-(\d+)-\d+$")
_WIRE_OUTPUT = {
    Array.IMAGES: Output.THUMBNAILS,
    Array.VIDEOS: Output.MP4,
    Array.AUDIOS: Output.MP3,
    Array.TEXTS: Output.SPEECH_TO_TEXT,
}


def _from_wire(data: dict[str, Any]) -> list[Made]:
    """Entries of a row written by qthumb before typed results (its ``images[]`` and so on)."""
    made: list[Made] = []
    for array, output in _WIRE_OUTPUT.items():
        for entry in data.get(array) or []:
            found = _WIRE_TAG.match(str(entry.get("tag", "")))
            index = int(found.group(1)) if found else 0
            user_tag = entry.get("user_tag")
            if entry.get("error"):
                made.append(FormatFailed(index, output, user_tag, entry.get("error_description")))
                continue
            video = array is not Array.IMAGES
            size = entry.get("size") or 0
            made.append(
                StoredFile(
                    index=index,
                    output=output,
                    user_tag=user_tag,
                    location=Location(url=entry.get("url") or ""),
                    storage=entry.get("storage"),
                    kind=EntryType.read(entry.get("type"), EntryType.VIDEO),
                    size=round(float(size) * 1_000_000) if video else int(size),
                    width=entry.get("width"),
                    height=entry.get("height"),
                    time=entry.get("time"),
                    duration=float(entry["duration"]) if video and entry.get("duration") else None,
                    meta=entry.get("meta"),
                )
            )
    return made
