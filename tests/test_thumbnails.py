"""``output: "thumbnails"``: frames, sprite sheets and WebVTT, end to end over HTTP."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import ImageChops, ImageStat

from tests.conftest import FPS, INDEX_FRAMES, ffmpeg
from tests.qclient import QClient
from tests.test_thumbnail import frame_index, image_of

CUE = re.compile(
    r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)\n"
    r"(.+?)(?:#xywh=(\d+),(\d+),(\d+),(\d+))?$"
)


@pytest.fixture(scope="module")
def extra_clips(clips: Path) -> Path:
    """A variable-frame-rate index clip and a one-frame clip, beside the others."""
    vfr = clips / "vfr.mp4"
    if not vfr.exists():
        # frames 0-49 every 40 ms (0 … 1.96 s), frames 50-99 every 100 ms (2.0 … 6.9 s)
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=64x48:r=25:d=4,geq=lum='16+2*N':cb=128:cr=128",
            "-vf",
            "setpts='(if(lt(N,50),N*0.04,2+(N-50)*0.1))/TB'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-video_track_timescale",
            "1000",
            str(vfr),
        )
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=64x48:r=25",
            "-frames:v",
            "1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(clips / "one-frame.mp4"),
        )
    return clips


def of_type(status: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    assert status["status"] == "completed", status
    return [i for i in status["images"] if i["type"] == kind]


def vtt_of(client: QClient, status: dict[str, Any]) -> str:
    [vtt] = of_type(status, "vtt")
    response = client.fetch(vtt["url"])
    assert response.headers["content-type"].startswith("text/vtt")
    assert response.headers["access-control-allow-origin"] == "*"
    return response.text


def parse_cues(text: str) -> list[tuple[float, float, str, tuple[int, ...] | None]]:
    assert text.startswith("WEBVTT\n\n") and "\r" not in text
    cues = []
    for block in text[len("WEBVTT\n\n") :].strip("\n").split("\n\n"):
        m = CUE.match(block)
        assert m, block
        g = m.groups()
        start = int(g[0]) * 3600 + int(g[1]) * 60 + int(g[2]) + int(g[3]) / 1000
        end = int(g[4]) * 3600 + int(g[5]) * 60 + int(g[6]) + int(g[7]) / 1000
        xywh = tuple(int(v) for v in g[9:13]) if g[9] is not None else None
        cues.append((start, end, g[8], xywh))
    return cues


def test_exact_vtt_text_for_a_sprite(client: QClient, clips: Path):
    status = client.run(
        {
            "source": str(clips / "index.mp4"),
            "format": [
                {
                    "output": "thumbnails",
                    "interval": 1,
                    "sprite": 1,
                    "columns": 3,
                    "width": 32,
                    "image_format": "jpg",
                }
            ],
        }
    )
    assert vtt_of(client, status) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.000\nsprite.jpg#xywh=0,0,32,24\n\n"
        "00:00:01.000 --> 00:00:02.000\nsprite.jpg#xywh=32,0,32,24\n\n"
        "00:00:02.000 --> 00:00:03.000\nsprite.jpg#xywh=64,0,32,24\n\n"
        "00:00:03.000 --> 00:00:04.000\nsprite.jpg#xywh=0,24,32,24\n"
    )
    [sheet] = of_type(status, "sprite")
    assert sheet["url"].endswith("/0/sprite.jpg") and (sheet["width"], sheet["height"]) == (96, 48)
    assert image_of(client, sheet["url"]).size == (96, 48)


def test_every_tile_is_the_expected_frame(client: QClient, clips: Path):
    status = client.run(
        {
            "source": str(clips / "index.mp4"),
            "format": [{"output": "thumbnails", "interval": 0.3, "sprite": 1, "columns": 5}],
        }
    )
    cues = parse_cues(vtt_of(client, status))
    assert len(cues) == 14  # 0, 0.3, … 3.9
    assert cues[0][0] == 0 and cues[-1][1] == INDEX_FRAMES / FPS
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cues))  # no gaps
    [sheet] = of_type(status, "sprite")
    image = image_of(client, sheet["url"])
    assert image.size == (5 * 64, 3 * 48)  # columns x tile
    for k, (_, _, name, xywh) in enumerate(cues):
        assert name == "sprite.png" and xywh is not None
        x, y, w, h = xywh
        assert x + w <= image.width and y + h <= image.height
        expected = int(round(k * 0.3 * FPS, 6))
        assert frame_index(image.crop((x, y, x + w, y + h))) == pytest.approx(expected, abs=0.5)


def test_frames_without_sprite(client: QClient, clips: Path):
    status = client.run(
        {
            "source": str(clips / "index.mp4"),
            "format": [
                {
                    "output": "thumbnails",
                    "interval": "1.5",
                    "image_format": "png",
                    "user_tag": "series",
                }
            ],
        }
    )
    frames = of_type(status, "frame")
    assert [f["url"].rsplit("/", 1)[1] for f in frames] == [
        "thumb_0001.png",
        "thumb_0002.png",
        "thumb_0003.png",
    ]
    assert [f["time"] for f in frames] == [0.0, 1.48, 3.0]  # the frames holding 0, 1.5 and 3.0
    assert {f["user_tag"] for f in status["images"]} == {"series"}
    assert [f["tag"] for f in status["images"]] == [f"image-0-{j}" for j in range(4)]
    for frame in frames:
        assert frame_index(image_of(client, frame["url"])) == pytest.approx(
            round(frame["time"] * FPS), abs=0.5
        )
    assert vtt_of(client, status) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.500\nthumb_0001.png\n\n"
        "00:00:01.500 --> 00:00:03.000\nthumb_0002.png\n\n"
        "00:00:03.000 --> 00:00:04.000\nthumb_0003.png\n"
    )


def test_tiles_match_single_thumbnails(client: QClient, clips: Path):
    source = str(clips / "testsrc.mp4")  # 6 s
    status = client.run(
        {
            "source": source,
            "format": [
                {"output": "thumbnails", "interval": 1, "sprite": 1, "width": 160},
                *({"output": "thumbnail", "time": k / 6, "width": 160} for k in range(6)),
            ],
        }
    )
    [sheet] = of_type(status, "sprite")
    sprite = image_of(client, sheet["url"]).convert("RGB")
    singles = of_type(status, "thumbnail")
    for (_, _, _, xywh), single in zip(parse_cues(vtt_of(client, status)), singles, strict=True):
        assert xywh is not None
        x, y, w, h = xywh
        tile = sprite.crop((x, y, x + w, y + h))
        reference = image_of(client, single["url"]).convert("RGB")
        assert tile.size == reference.size
        assert max(ImageStat.Stat(ImageChops.difference(tile, reference)).mean) < 2


def test_long_series_splits_into_sheets(client: QClient, clips: Path):
    # 400 tiles of 64x48 in one column: 333 rows fit under 16,000 px, so two sheets.
    status = client.run(
        {
            "source": str(clips / "index.mp4"),
            "format": [
                {
                    "output": "thumbnails",
                    "interval": 0.01,
                    "sprite": 1,
                    "columns": 1,
                    "image_format": "jpg",
                }
            ],
        },
        timeout=120,
    )
    sheets = of_type(status, "sprite")
    assert [s["url"].rsplit("/", 1)[1] for s in sheets] == ["sprite_01.jpg", "sprite_02.jpg"]
    assert [(s["width"], s["height"]) for s in sheets] == [(64, 333 * 48), (64, 67 * 48)]
    cues = parse_cues(vtt_of(client, status))
    assert len(cues) == 400
    assert cues[332][2:] == ("sprite_01.jpg", (0, 332 * 48, 64, 48))
    assert cues[333][2:] == ("sprite_02.jpg", (0, 0, 64, 48))
    assert cues[-1][1] == 4.0


def test_interval_longer_than_video_gives_one_frame(client: QClient, clips: Path):
    status = client.run(
        {
            "source": str(clips / "index.mp4"),
            "format": [{"output": "thumbnails", "interval": 60, "sprite": 1}],
        }
    )
    assert parse_cues(vtt_of(client, status)) == [(0.0, 4.0, "sprite.png", (0, 0, 64, 48))]


def test_one_frame_clip(client: QClient, extra_clips: Path):
    status = client.run(
        {
            "source": str(extra_clips / "one-frame.mp4"),
            "format": [{"output": "thumbnails", "interval": 10}],
        }
    )
    assert vtt_of(client, status) == "WEBVTT\n\n00:00:00.000 --> 00:00:00.040\nthumb_0001.png\n"


def test_variable_frame_rate_source(client: QClient, extra_clips: Path):
    status = client.run(
        {
            "source": str(extra_clips / "vfr.mp4"),
            "format": [{"output": "thumbnails", "interval": 0.5}],
        }
    )
    frames = of_type(status, "frame")
    # at t < 2 s frame n starts at n·0.04; after, frame 50 + m starts at 2 + m·0.1
    expected = [
        min(int(t * 25), 49) if t < 2 else 50 + int(round((t - 2) * 10, 6))
        for t in (k * 0.5 for k in range(len(frames)))
    ]
    assert len(frames) == 14  # 0 … 6.5 s below 7.0 s
    for frame, index in zip(frames, expected, strict=True):
        assert frame_index(image_of(client, frame["url"])) == pytest.approx(index, abs=0.5)


def test_rotated_source_gives_portrait_tiles(client: QClient, clips: Path):
    status = client.run(
        {
            "source": str(clips / "rotated.mp4"),
            "format": [{"output": "thumbnails", "interval": 1, "sprite": 1, "height": 64}],
        }
    )
    [sheet] = of_type(status, "sprite")
    sprite = image_of(client, sheet["url"]).convert("L")
    assert sprite.size == (2 * 48, 64)
    assert sprite.getpixel((4, 60)) > 200 and sprite.getpixel((44, 4)) < 50


def test_audio_only_source_is_a_clear_error(client: QClient, clips: Path):
    status = client.run(
        {"source": str(clips / "audio.m4a"), "format": [{"output": "thumbnails", "interval": 1}]}
    )
    assert status["status"] == "error"
    assert status["error_description"] == (
        "source has no video stream (found: audio); thumbnails need a video track"
    )


def test_keyframes_only_flag_gives_keyframes(client: QClient, clips: Path):
    status = client.run(
        {
            "source": str(clips / "index.mp4"),
            "format": [{"output": "thumbnails", "interval": 1, "keyframes_only": 1}],
        }
    )
    frames = of_type(status, "frame")
    # keyframes at frames 0 and 50 (2 s GOP): 0 s, 1 s → frame 0; 2 s, 3 s → frame 50
    assert [f["time"] for f in frames] == [0.0, 0.0, 2.0, 2.0]
    indexes = [frame_index(image_of(client, f["url"])) for f in frames]
    assert indexes == pytest.approx([0, 0, 50, 50], abs=0.5)


def test_percent_is_a_float_that_reaches_100(client: QClient, clips: Path):
    # held half a second in each of two stages (a fault in the query): polls see it running
    hold = [{"task": {}, "hold": {"downloading": 0.5}}, {"task": {}, "hold": {"encoding": 0.5}}]
    task = client.start({"source": str(clips / "index.mp4"), "qthumb_faults": hold,
                         "format": [{"output": "thumbnails", "interval": 0.04}]})  # fmt: skip
    seen = []
    while (status := client.status(task))["status"] not in ("completed", "error"):
        seen.append((status["status"], status["percent"]))
    assert status["status"] == "completed" and status["percent"] == 100.0
    assert {"downloading", "encoding"} <= {stage for stage, _ in seen}, seen
    percents = [p for _, p in seen]
    assert all(isinstance(p, float) and 0.0 <= p <= 100.0 for p in percents), seen
    assert percents == sorted(percents)  # never goes back


@pytest.mark.parametrize("stride", [1, 7, 23, 37, 61])
def test_reader_is_exact_at_every_stride(clips: Path, stride: int):
    """In-process, on the B-frame index clip: whatever mix of seeking, decoding on, and
    skipping unreferenced frames the plan picks, each picture is the frame at its time."""
    from qthumb.workers.media.frames import VideoReader
    from qthumb.workers.media.probe import probe

    path = clips / "index.mp4"
    frames = list(range(0, INDEX_FRAMES, stride))
    times = [f / FPS + 0.013 for f in frames]  # inside each frame's span, not on its start
    with VideoReader(path, probe(path), threads=1) as reader:
        pictures = list(reader.frames_at(times))
    for frame, picture in zip(frames, pictures, strict=True):
        assert picture.time == pytest.approx(frame / FPS)
        assert frame_index(picture.to_image(64, 48)) == pytest.approx(frame, abs=0.5)


@pytest.mark.parametrize("readers", [1, 2, 3])
def test_keyframes_only_readers_share_out_keyframes(clips: Path, readers: int):
    """Several readers take keyframe groups as they come free: every time still gets exactly
    one picture, the keyframe it falls on (index clip: keyframes every 50 frames), and a
    keyframe is decoded by one reader only."""
    from qthumb.workers.media.decode_pool import DecodePool
    from qthumb.workers.media.frames import VideoReader
    from qthumb.workers.media.probe import probe

    path = clips / "index.mp4"
    info = probe(path)
    times = [k * 0.3 for k in range(int(INDEX_FRAMES / FPS / 0.3))]
    with VideoReader(path, info, threads=1) as reader:
        groups = reader.keyframe_groups(times)
    assert sorted(i for g in groups for i in g) == list(range(len(times)))
    assert len(groups) == len({int(t * FPS) // 50 for t in times})
    pool = DecodePool(path, info, times, lambda p: (p.time, frame_index(p.to_image(64, 48))),
                      readers, keyframes_only=True)  # fmt: skip
    got = dict(pool)
    assert sorted(got) == list(range(len(times)))
    for k, t in enumerate(times):
        key = int(t * FPS) // 50 * 50
        assert got[k][0] == pytest.approx(key / FPS)
        assert got[k][1] == pytest.approx(key, abs=0.5)


@pytest.mark.parametrize(("readers", "stride"), [(2, 1), (2, 7), (3, 13), (4, 37)])
def test_readers_taking_pieces_give_the_exact_frames(clips: Path, readers: int, stride: int):
    """Exact frames with several readers taking runs of GOPs as they come free: every time
    gets its own frame, whatever the pieces, dense (every frame) or sparse."""
    from qthumb.workers.media.decode_pool import DecodePool
    from qthumb.workers.media.probe import probe

    path = clips / "index.mp4"
    frames = list(range(0, INDEX_FRAMES, stride))
    times = [f / FPS + 0.013 for f in frames]
    pool = DecodePool(path, probe(path), times, lambda p: frame_index(p.to_image(64, 48)),
                      readers)  # fmt: skip
    got = dict(pool)
    assert sorted(got) == list(range(len(times)))
    for k, frame in enumerate(frames):
        assert got[k] == pytest.approx(frame, abs=0.5), (k, frame)
