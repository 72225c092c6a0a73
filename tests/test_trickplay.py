"""Trickplay files (``trickplay`` on a sprite series): the HLS image playlist, the DASH image
AdaptationSet and Roku's BIF, each read back here the way a player does, from the published
formats and nothing of qthumb's: for many times, the tile a player would show is the frame
shown at that time (the barcode clip, each frame's index written in it)."""

from __future__ import annotations

import io
import itertools
import json
import math
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from qthumb.app.qencode.trickplay import tile_problem
from qthumb.workers.failures import FormatFailure
from qthumb.workers.outputs.trickplay import BifTiles
from tests.conftest import API_KEY, FPS, QthumbProcess, serving
from tests.qclient import QClient
from tests.test_thumbnail import barcode_index

TILE = (64, 48)  # the barcode clip's own size
# six tiles a sheet at most (3 columns, 2 rows): ten tiles make two sheets, the last padded
PIXELS = 6 * TILE[0] * TILE[1]
INTERVAL = 0.4  # ten tiles over the clip's 4 s
TIMES = [0.0, 0.1, 0.39, 0.4, 1.0, 2.35, 2.4, 2.79, 3.6, 3.99]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[QthumbProcess]:
    with serving(tmp_path_factory.mktemp("trickplay"), clips, workers=1,
                 QTHUMB_MAX_OUTPUT_PIXELS=str(PIXELS)) as running:  # fmt: skip
        yield running


@pytest.fixture(scope="module")
def made(server: QthumbProcess, clips: Path) -> dict[str, bytes]:
    """The files of one series with every trickplay format, by name."""
    return files_of(server, clips)


def files_of(server: QthumbProcess, clips: Path, manifest: str = "") -> dict[str, bytes]:
    """``manifest``: a multivariant playlist for qthumb to copy with its image track."""
    with QClient(server.base_url, API_KEY) as client:
        series = {
            "output": "thumbnails",
            "interval": INTERVAL,
            "sprite": 1,
            "columns": 3,
            "image_format": "jpg",
            "quality": 95,
            "trickplay": ["hls", "dash", "bif"],
            **({"manifest": manifest} if manifest else {}),
        }
        status = client.run({"source": str(clips / "barcode.mp4"), "format": [series]})
        assert status["status"] == "completed", status
        types = {i["url"].rsplit("/", 1)[1]: i["type"] for i in status["images"]}
        assert types == {"sprite_01.jpg": "sprite", "sprite_02.jpg": "sprite",
                         "thumbnails.vtt": "vtt", "thumbnails.m3u8": "hls",
                         "thumbnails-image-stream.m3u8": "hls",
                         "thumbnails-image-adaptation-set.xml": "dash",
                         "thumbnails.bif": "bif",
                         **({} if not manifest else {"thumbnails-manifest.mpd": "dash"}
                            if manifest.endswith(".mpd") else {"thumbnails-manifest.m3u8": "hls"}),
                         }, types  # fmt: skip
        return {i["url"].rsplit("/", 1)[1]: client.fetch(i["url"]).content
                for i in status["images"]}  # fmt: skip


def shown_frame(t: float) -> int:
    """The frame a seek preview at ``t`` should show: the tile of the last series time at or
    before ``t``, which is the frame shown at that time."""
    tile_time = math.floor(t / INTERVAL + 1e-9) * INTERVAL
    return math.floor(tile_time * FPS + 1e-9)


def tile_of(sheet: bytes, index: int, columns: int, size: tuple[int, int]) -> int:
    x, y = index % columns * size[0], index // columns * size[1]
    with Image.open(io.BytesIO(sheet)) as image:
        return barcode_index(image.convert("RGB").crop((x, y, x + size[0], y + size[1])))


def attributes(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line)}


def test_hls_image_playlist_points_each_time_at_its_frame(made: dict[str, bytes]):
    playlist = made["thumbnails.m3u8"].decode()
    lines = playlist.splitlines()
    assert lines[0] == "#EXTM3U" and "#EXT-X-IMAGES-ONLY" in lines
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines and lines[-1] == "#EXT-X-ENDLIST"
    segments: list[dict[str, Any]] = []  # as Shaka Player reads them: tiles, then EXTINF, URI
    start, tiles = 0.0, {}
    for line, after in itertools.pairwise(lines):
        if line.startswith("#EXT-X-TILES:"):
            tiles = attributes(line.split(":", 1)[1])
        if line.startswith("#EXTINF:"):
            seconds = float(line.split(":", 1)[1].rstrip(","))
            segments.append({"start": start, "end": start + seconds, "uri": after, **tiles})
            start += seconds
    assert [s["uri"] for s in segments] == ["sprite_01.jpg", "sprite_02.jpg"]
    assert all(s["RESOLUTION"] == "64x48" and s["LAYOUT"] == "3x2" for s in segments)
    assert all(float(s["DURATION"]) == INTERVAL for s in segments)
    assert math.isclose(start, 4.0, abs_tol=0.002)  # the whole clip
    target = int(re.search(r"#EXT-X-TARGETDURATION:(\d+)", playlist).group(1))  # type: ignore[union-attr]
    assert target >= max(s["end"] - s["start"] for s in segments)
    for t in TIMES:
        segment = next(s for s in segments if s["start"] <= t < s["end"])
        index = math.floor((t - segment["start"]) / float(segment["DURATION"]) + 1e-9)
        assert tile_of(made[segment["uri"]], index, 3, TILE) == shown_frame(t), t
    stream = made["thumbnails-image-stream.m3u8"].decode().splitlines()
    assert stream[0] == "#EXTM3U"
    [tag] = [line for line in stream if line.startswith("#EXT-X-IMAGE-STREAM-INF:")]
    found = attributes(tag.split(":", 1)[1])
    # a tile's size (Shaka Player multiplies it by the LAYOUT for the sheet's)
    assert (found["RESOLUTION"], found["CODECS"], found["URI"]) == ("64x48", "jpeg",
                                                                    "thumbnails.m3u8")  # fmt: skip
    peak = max(len(made[s["uri"]]) * 8 / (s["end"] - s["start"]) for s in segments)
    assert int(found["BANDWIDTH"]) >= peak


def test_dash_image_adaptation_set_points_each_time_at_its_frame(made: dict[str, bytes]):
    root = ET.fromstring(made["thumbnails-image-adaptation-set.xml"])
    assert root.tag == "AdaptationSet" and root.get("contentType") == "image"
    assert root.get("mimeType") == "image/jpeg"
    template = root.find("SegmentTemplate")
    representation = root.find("Representation")
    assert template is not None and representation is not None
    prop = representation.find("EssentialProperty")
    assert prop is not None
    assert prop.get("schemeIdUri") == "http://dashif.org/guidelines/thumbnail_tile"
    columns, rows = (int(v) for v in str(prop.get("value")).split("x"))
    assert (columns, rows) == (3, 2)
    sheet = (int(str(representation.get("width"))), int(str(representation.get("height"))))
    assert sheet == (columns * TILE[0], rows * TILE[1])
    timescale, duration = int(str(template.get("timescale"))), int(str(template.get("duration")))
    start_number = int(str(template.get("startNumber")))
    for t in TIMES:  # as dash.js and Shaka address a SegmentTemplate with $Number$
        number = math.floor(t * timescale / duration) + start_number
        found = re.fullmatch(r"(.*)\$Number%0(\d+)d\$(.*)", str(template.get("media")))
        assert found
        media = f"{found.group(1)}{number:0{found.group(2)}d}{found.group(3)}"
        into = t - (number - start_number) * duration / timescale
        index = math.floor(into / (duration / timescale / (columns * rows)) + 1e-9)
        assert tile_of(made[media], index, columns, TILE) == shown_frame(t), t


def read_bif(data: bytes) -> list[tuple[int, bytes]]:
    """Roku's BIF, read as its published format says: (milliseconds, JPEG) of each image."""
    assert data[:8] == b"\x89BIF\r\n\x1a\n"
    version, count, multiplier = struct.unpack_from("<III", data, 8)
    assert version == 0 and data[20:64] == b"\0" * 44
    multiplier = multiplier or 1000
    index = [struct.unpack_from("<II", data, 64 + 8 * k) for k in range(count + 1)]
    assert index[-1][0] == 0xFFFFFFFF and index[-1][1] == len(data)
    return [(stamp * multiplier, data[offset:index[k + 1][1]])
            for k, (stamp, offset) in enumerate(index[:-1])]  # fmt: skip


def test_bif_holds_one_jpeg_a_tile_at_its_time(made: dict[str, bytes]):
    images = read_bif(made["thumbnails.bif"])
    assert [ms for ms, _ in images] == [round(k * INTERVAL * 1000) for k in range(10)]
    for ms, jpeg in images:
        assert jpeg[:2] == b"\xff\xd8"
        with Image.open(io.BytesIO(jpeg)) as image:
            assert image.size == TILE
            assert barcode_index(image.convert("RGB")) == shown_frame(ms / 1000), ms


@pytest.mark.parametrize(("fields", "words"), [
    ({"trickplay": ["hls"], "image_format": "jpg"}, "needs sprite: 1"),
    ({"trickplay": ["bif"], "sprite": 1}, "needs image_format jpg"),
    ({"trickplay": ["mss"], "sprite": 1, "image_format": "jpg"}, "'mss' is not one of"),
    ({"trickplay": 5, "sprite": 1, "image_format": "jpg"}, "must be a list of hls, dash"),
    ({"trickplay": "hls,dash", "sprite": 1, "image_format": "jpg", "start_time": 1},
     "cannot start at start_time"),
    ({"trickplay": ["bif"], "sprite": 1, "image_format": "jpg", "manifest": "/x.mpd"},
     'it needs trickplay "hls" or "dash"'),
    ({"trickplay": ["hls"], "sprite": 1, "image_format": "jpg", "manifest": 7},
     "must be the URL of a playlist or an MPD"),
    ({"trickplay": ["dash"], "sprite": 1, "image_format": "jpg", "width": 1081},
     "tiles are at most 1080 pixels a side (DASH-IF IOP 4.3, 6.2.6; 720 for low-end devices), "
     "these would be 1081x?"),
    ({"trickplay": ["bif", "hls"], "sprite": 1, "image_format": "jpg", "width": 560, "dpr": 2},
     "these would be 1120x?"),
    ({"trickplay": ["hls"], "sprite": 1, "image_format": "jpg", "resolution": 1200},
     "these would be 1200x1200"),
])  # fmt: skip
def test_what_cannot_be_made_is_refused(
    server: QthumbProcess, clips: Path, fields: dict[str, Any], words: str
):
    with QClient(server.base_url, API_KEY) as client:
        task = client.new_task()
        query = {"source": str(clips / "barcode.mp4"),
                 "format": [{"output": "thumbnails", "interval": 1, **fields}]}  # fmt: skip
        reply = client.post("start_encode2", {"task_token": task,
                                              "query": json.dumps({"query": query})})  # fmt: skip
        assert reply["error"] == 1 and words in reply["message"], reply


def test_a_manifest_that_is_not_a_multivariant_playlist_fails_its_format(
    server: QthumbProcess, clips: Path
):
    (clips / "media.m3u8").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nx.ts\n")
    with QClient(server.base_url, API_KEY) as client:
        status = client.run({"source": str(clips / "barcode.mp4"), "format": [
            {"output": "thumbnails", "interval": 1, "sprite": 1, "image_format": "jpg",
             "trickplay": ["hls"], "manifest": str(clips / "media.m3u8")}]})  # fmt: skip
    assert status["status"] == "error"
    assert "it is a media playlist, not a multivariant one" in status["error_description"]


def test_a_tile_past_the_limit_by_the_sources_aspect_fails_its_format(
    server: QthumbProcess, clips: Path
):
    """The query names the width only: a portrait source (shown 48x64) makes its tiles
    1000x1333, past what an HLS or DASH image track may carry; found before any frame is
    decoded. A BIF alone has no such limit, and 1080 itself is allowed."""
    with QClient(server.base_url, API_KEY) as client:
        series = {"output": "thumbnails", "interval": 1, "sprite": 1, "image_format": "jpg"}
        status = client.run({"source": str(clips / "rotated.mp4"), "format": [
            {**series, "width": 1000, "trickplay": ["dash"]}]})  # fmt: skip
    assert status["status"] == "error", status
    assert "these would be 1000x1333" in status["error_description"], status
    assert tile_problem("t", 1080, 1080) is None and tile_problem("t", 1080, None) is None
    assert tile_problem("t", None, 1081) is not None


def test_a_bif_by_url_holds_the_storyboards_tiles(server: QthumbProcess, clips: Path):
    """``/v1/trickplay.bif`` for any started task: the storyboard's tiles at its times."""
    with QClient(server.base_url, API_KEY) as client:
        client.run({"source": str(clips / "barcode.mp4"), "format": [{"output": "metadata"}]})
        token = client.last_token
    query = f"task_token={token}&width=64&columns=3&interval={INTERVAL}"
    answer = httpx.get(f"{server.base_url}/v1/trickplay.bif?{query}", timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == "*"
    images = read_bif(answer.content)
    assert [ms for ms, _ in images] == [round(k * INTERVAL * 1000) for k in range(10)]
    for ms, jpeg in images:
        with Image.open(io.BytesIO(jpeg)) as image:
            assert barcode_index(image.convert("RGB")) == shown_frame(ms / 1000), ms
    again = httpx.get(f"{server.base_url}/v1/trickplay.bif?{query}", timeout=60)
    assert again.content == answer.content  # kept: the same bytes
    webp = httpx.get(f"{server.base_url}/v1/trickplay.bif?{query}&format=webp", timeout=60)
    assert webp.status_code == 400 and "format=jpg" in webp.json()["message"]
    wide = httpx.get(f"{server.base_url}/v1/trickplay.m3u8?{query}".replace("=64", "=1100"))
    assert wide.status_code == 400 and "these would be 1100x?" in wide.json()["message"]


def test_a_bif_past_what_its_index_addresses_fails_saying_so(tmp_path: Path):
    """A BIF's offsets are 32-bit: past 4 GiB (here a 100-byte bound, the same check) the
    format fails with what to change, and no archive is written."""
    tiles = BifTiles(tmp_path / "spool")
    for k in range(3):
        tiles.add(k, b"\xff\xd8" + b"\0" * 40 + b"\xff\xd9")
    with pytest.raises(FormatFailure, match=r"a BIF's index is 32-bit: these 3 tiles make"):
        tiles.write(tmp_path / "x.bif", [0.0, 1.0, 2.0], addressable=100)
    assert not (tmp_path / "x.bif").exists()
    tiles = BifTiles(tmp_path / "spool")
    for k in range(3):
        tiles.add(k, b"\xff\xd8" + b"\0" * 40 + b"\xff\xd9")
    tiles.write(tmp_path / "x.bif", [0.0, 1.0, 2.0], addressable=64 + 32 + 3 * 44)
    assert (tmp_path / "x.bif").stat().st_size == 64 + 32 + 3 * 44
