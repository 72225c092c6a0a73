"""``trickplay`` (qthumb's extension on ``thumbnails`` with ``sprite: 1``): the seek-preview
formats players other than the web ones read, made from the same sheets as the WebVTT file.

- ``hls``: an HLS image media playlist (``#EXT-X-IMAGES-ONLY``, an ``#EXT-X-TILES`` before
  each sheet) and the ``#EXT-X-IMAGE-STREAM-INF`` line that adds it to a multivariant
  playlist: Roku, Shaka Player, Bitmovin.
- ``dash``: the image ``AdaptationSet`` (DASH-IF IOP 4.3, section 6.2.6: a ``SegmentTemplate`` over
  the sheets, the ``thumbnail_tile`` property) to add to an MPD: Shaka Player, dash.js, Roku.
- ``bif``: Roku's BIF archive, one JPEG a tile at the series' times: Plex, Roku channels.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urljoin
from xml.sax.saxutils import quoteattr

from qthumb.app.egress import url_problem
from qthumb.app.errors import BadQuery
from qthumb.app.qencode.fields.values import ImageFormat, Sizing, shown, url_scheme

HLS_TYPE = "application/vnd.apple.mpegurl"
# The widest or highest an HLS or DASH image track's tile (one thumbnail of a sheet) may be:
# DASH-IF IOP 4.3, section 6.2.6, as Roku's trick-mode pages state it for both formats (1080 on
# high-end devices, 720 on low-end ones). A sheet holds as many tiles as it likes.
MAX_TILE_SIDE = 1080


class Trickplay(StrEnum):
    HLS = "hls"
    DASH = "dash"
    BIF = "bif"


def image_tracks(kinds: Sequence[Trickplay]) -> bool:
    """Whether ``kinds`` holds an HLS or DASH image track (a timeline of equal tiles)."""
    return Trickplay.HLS in kinds or Trickplay.DASH in kinds


def trickplay_field(
    value: object, path: str, sprite: bool, image_format: ImageFormat, start_time: float | None
) -> tuple[Trickplay, ...]:
    """``trickplay``: a list of ``hls``, ``dash`` and ``bif`` (or the same as one string with
    commas); absent or empty: none."""
    if value is None or value == "" or value == []:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise BadQuery(f"{path} must be a list of hls, dash and bif, got {shown(value)}")
    found: list[Trickplay] = []
    for item in items:
        try:
            kind = Trickplay(item.strip().lower())
        except ValueError:
            raise BadQuery(f"{path}: {item.strip()!r} is not one of hls, dash, bif") from None
        if kind not in found:
            found.append(kind)
    if not sprite:
        raise BadQuery(f"{path} is made from sprite sheets: it needs sprite: 1")
    if image_format is not ImageFormat.JPG:
        raise BadQuery(
            f"{path}: HLS and DASH image tracks and BIF carry JPEG: it needs image_format jpg"
        )
    if start_time and image_tracks(found):
        raise BadQuery(
            f"{path}: an HLS or DASH image track covers the whole timeline from 0: it cannot "
            "start at start_time"
        )
    return tuple(found)


def tile_problem(path: str, width: int | None, height: int | None) -> str | None:
    """Why an HLS or DASH image track cannot have tiles of ``width`` x ``height`` pixels (a
    side ``None``: not known yet), or ``None``."""
    sides = [side for side in (width, height) if side is not None]
    if not sides or max(sides) <= MAX_TILE_SIDE:
        return None
    shown_size = "x".join("?" if side is None else str(side) for side in (width, height))
    return (
        f"{path}: an HLS or DASH image track's tiles are at most {MAX_TILE_SIDE} pixels a side "
        f"(DASH-IF IOP 4.3, 6.2.6; 720 for low-end devices), these would be {shown_size}: ask "
        "for a smaller width or height (times dpr)"
    )


def check_tile_size(path: str, trickplay: tuple[Trickplay, ...], sizing: Sizing, dpr: int) -> None:
    """At ``start_encode2``: the sides the query names already decide a tile past the limit
    (``resolution`` is the short side, so it bounds both)."""
    if not image_tracks(trickplay):
        return
    width = sizing.width or sizing.resolution
    height = sizing.height or sizing.resolution
    problem = tile_problem(f"{path}.trickplay", width and width * dpr, height and height * dpr)
    if problem is not None:
        raise BadQuery(problem)


@dataclass(frozen=True)
class SheetTrack:
    """The sheets of one series as a timeline: what the HLS and DASH files describe."""

    names: Sequence[str]  # each sheet's file name, as the playlists refer to it
    sizes: Sequence[int]  # each sheet's bytes
    starts: Sequence[float]  # each sheet's first tile time (seconds)
    end: float  # the end of the series' window
    tile: tuple[int, int]  # a tile's pixels
    columns: int
    rows: int
    interval: float  # seconds a tile stands for

    def durations(self) -> list[float]:
        ends = [*self.starts[1:], self.end]
        return [max(0.001, e - s) for s, e in zip(self.starts, ends, strict=True)]

    @property
    def sheet_size(self) -> tuple[int, int]:
        return self.columns * self.tile[0], self.rows * self.tile[1]

    def peak_bandwidth(self) -> int:
        """Bits a second of the largest sheet over its own duration (HLS's BANDWIDTH)."""
        return max(
            math.ceil(size * 8 / seconds)
            for size, seconds in zip(self.sizes, self.durations(), strict=True)
        )


def hls_media_playlist(track: SheetTrack) -> str:
    durations = track.durations()
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{math.ceil(max(durations))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-IMAGES-ONLY",
    ]
    width, height = track.tile
    for name, seconds in zip(track.names, durations, strict=True):
        lines.append(
            f"#EXT-X-TILES:RESOLUTION={width}x{height},LAYOUT={track.columns}x{track.rows},"
            f"DURATION={track.interval:.3f}"
        )
        lines += [f"#EXTINF:{seconds:.3f},", name]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def hls_image_stream(track: SheetTrack, playlist_uri: str) -> str:
    """A multivariant playlist holding the image stream alone: its one tag is the line to add
    to the presentation's own."""
    width, height = track.tile  # a tile's, as Shaka Player and Jellyfin read it
    return (
        "#EXTM3U\n#EXT-X-VERSION:7\n"
        f"#EXT-X-IMAGE-STREAM-INF:BANDWIDTH={track.peak_bandwidth()},RESOLUTION={width}x{height},"
        f'CODECS="jpeg",URI="{playlist_uri}"\n'
    )


def dash_adaptation_set(track: SheetTrack, media: str = "", start_number: int = 1) -> str:
    """The image AdaptationSet to put in an MPD's Period. ``media``: the SegmentTemplate's
    (default: made from the sheets' names, sprite_01.jpg… as sprite_$Number%02d$.jpg)."""
    first = track.names[0]
    if not media and len(track.names) > 1:
        stem, _, ext = first.rpartition(".")
        base, _, number = stem.rpartition("_")
        media = f"{base}_$Number%0{len(number)}d$.{ext}"
    media = media or first
    width, height = track.sheet_size
    sheet_ms = round(track.columns * track.rows * track.interval * 1000)
    bandwidth = track.peak_bandwidth()
    return (
        '<AdaptationSet id="100" contentType="image" mimeType="image/jpeg">\n'
        f'  <SegmentTemplate media={quoteattr(media)} startNumber="{start_number}" '
        f'timescale="1000" duration="{sheet_ms}"/>\n'
        f'  <Representation id="thumbnails_{track.columns}x{track.rows}" '
        f'bandwidth="{bandwidth}" width="{width}" height="{height}">\n'
        '    <EssentialProperty schemeIdUri="http://dashif.org/guidelines/thumbnail_tile" '
        f'value="{track.columns}x{track.rows}"/>\n'
        "  </Representation>\n"
        "</AdaptationSet>\n"
    )


def trickplay_mpd(adaptation_set: str, seconds: float) -> str:
    """A static MPD of one Period holding ``adaptation_set`` alone: what ``/v1/trickplay.mpd``
    answers, for its AdaptationSet to be copied into a presentation's own MPD."""
    body = "\n".join("    " + line for line in adaptation_set.splitlines())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" minBufferTime="PT2S" '
        f'mediaPresentationDuration="PT{seconds:.3f}S">\n'
        f'  <Period id="0" start="PT0S">\n{body}\n  </Period>\n</MPD>\n'
    )


def manifest_field(value: object, path: str, trickplay: tuple[Trickplay, ...]) -> str | None:
    """``manifest``: the presentation's multivariant playlist or MPD (a URL or a path, fetched
    as a source is), copied with the image track added; absent: none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadQuery(f"{path} must be the URL of a playlist or an MPD, got {shown(value)}")
    if not image_tracks(trickplay):
        raise BadQuery(
            f"{path}: qthumb adds its image track to a multivariant playlist or an MPD: it "
            'needs trickplay "hls" or "dash"'
        )
    if url_scheme(value) in ("http", "https") and (problem := url_problem(value.strip())):
        raise BadQuery(f"{path}: {problem}")
    return value.strip()


def extend_multivariant(text: str, base: str | None, image_stream: str) -> str:
    """``text``, a multivariant playlist, with the ``#EXT-X-IMAGE-STREAM-INF`` line of
    ``image_stream`` added; its own URIs made absolute against ``base`` (the URL it was
    fetched from), so the copy plays from wherever it is served."""
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].strip() != "#EXTM3U":
        raise ValueError("it is not an HLS playlist (no #EXTM3U first)")
    if not any(line.startswith("#EXT-X-STREAM-INF") for line in lines):
        raise ValueError("it is a media playlist, not a multivariant one (no #EXT-X-STREAM-INF)")
    out = []
    for line in lines:
        if base and line.strip() and not line.startswith("#"):
            line = urljoin(base, line.strip())
        elif base and line.startswith("#") and 'URI="' in line:
            line = re.sub(r'URI="([^"]*)"', lambda m: f'URI="{urljoin(base, m.group(1))}"', line)
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    [stream] = [line for line in image_stream.splitlines() if line.startswith("#EXT-X-IMAGE")]
    return "\n".join([*out, stream]) + "\n"


MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
_SEGMENTS = {
    f"{{{MPD_NS}}}{name}"
    for name in ("SegmentBase", "SegmentList", "SegmentTemplate", "Representation")
}


def extend_mpd(text: str, base: str | None, adaptation_set: str) -> str:
    """``text``, an MPD, with ``adaptation_set`` added to its first Period; when it came from
    ``base`` (a URL), its own AdaptationSets are given that location (a ``BaseURL``), so the copy
    plays from beside qthumb's files while qthumb's track stays relative to the copy."""
    for prefix, uri in re.findall(r'xmlns(?::([A-Za-z_][\w.-]*))?="([^"]*)"', text[:20000]):
        ET.register_namespace(prefix, uri)  # written back as they were
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"it is not XML ({exc})") from None
    if root.tag != f"{{{MPD_NS}}}MPD":
        raise ValueError("it is not an MPD (no MPD element of the DASH namespace)")
    periods = root.findall(f"{{{MPD_NS}}}Period")
    if not periods:
        raise ValueError("it has no Period")
    ours = ET.fromstring(f'<Wrap xmlns="{MPD_NS}">{adaptation_set}</Wrap>')[0]
    if base:
        if root.find(f"{{{MPD_NS}}}BaseURL") is not None or any(
            p.find(f"{{{MPD_NS}}}BaseURL") is not None for p in periods
        ):
            raise ValueError(
                "its MPD or Period BaseURL would apply to qthumb's track too: add the "
                "AdaptationSet to it yourself"
            )
        here = urljoin(base, ".")
        for period in periods:
            for theirs in period.findall(f"{{{MPD_NS}}}AdaptationSet"):
                urls = theirs.findall(f"{{{MPD_NS}}}BaseURL")
                for url in urls:
                    url.text = urljoin(here, (url.text or "").strip())
                if not urls:
                    at = next((n for n, c in enumerate(theirs) if c.tag in _SEGMENTS), len(theirs))
                    located = ET.Element(f"{{{MPD_NS}}}BaseURL")
                    located.text = here
                    theirs.insert(at, located)
    periods[0].append(ours)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
