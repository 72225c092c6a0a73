"""``mp4`` and ``webm`` outputs beside thumbnails: the files play (ffprobe) at the asked size,
frame rate and duration, with audio, and the seed query runs whole."""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import pytest

from qthumb.app.qencode.query import parse_query
from qthumb.workers.media.probe import MediaInfo
from qthumb.workers.outputs.encoding.plan import AudioPlan, EncodePlan
from qthumb.workers.outputs.video import video_command
from tests.conftest import ffmpeg
from tests.qclient import QClient
from tests.test_thumbnail import barcode_index


@pytest.fixture(scope="module")
def av_clip(clips: Path) -> Path:
    path = clips / "with-audio.mp4"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=6", "-f", "lavfi",
               "-i", "sine=frequency=440:duration=6", "-c:v", "libx264", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-shortest", str(path))  # fmt: skip
    return path


def ffprobe(data: bytes, tmp: Path, suffix: str) -> dict[str, Any]:
    path = tmp / f"probe{suffix}"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out)
    return result


def test_encoding_is_planned_as_a_value():
    spec = parse_query({"source": "x", "format": [
        {"output": "mp4", "size": "320x240", "framerate": "15", "keyframe": "2s",
         "start_time": 1, "duration": 2, "bitrate": 500},
    ]}).formats[0]  # fmt: skip
    info = MediaInfo(duration=6.0, coded_width=640, coded_height=360, sample_aspect=1,  # type: ignore[arg-type]
                     start_time=0.0, frame_rate=25.0, codec="h264", has_audio=True)  # fmt: skip
    plan = video_command(Path("/in.mp4"), Path("/out/video.mp4"), spec, info, True)
    assert (plan.width, plan.height, plan.duration) == (320, 240, 2.0)
    assert plan.encode == EncodePlan(
        source="/in.mp4", out="/out/video.mp4", start=1.0, duration=2.0, width=320, height=240,
        codec="libx264", fps="15", codec_options={"preset": "veryfast"}, bit_rate=500_000,
        keyframe_every=2.0, container_options={"movflags": "+faststart"},
        audio=AudioPlan("aac", 128_000),
    )  # fmt: skip
    assert EncodePlan.from_json(plan.encode.to_json()) == plan.encode  # what the child reads
    limited = replace(info, max_pixels=10_000_000, rotation=90)
    encode = video_command(Path("/in.mp4"), Path("/out/video.mp4"), spec, limited, False).encode
    assert (encode.max_pixels, encode.rotation, encode.audio) == (10_000_000, 90, None)
    webm = parse_query({"source": "x", "format": [{"output": "webm", "keyframe": "50"}]})
    encode = video_command(Path("/in.mp4"), Path("/o.webm"), webm.formats[0], info, True).encode
    assert (encode.codec, encode.gop) == ("libvpx-vp9", 50)
    assert encode.audio == AudioPlan("libopus", 128_000)
    assert encode.codec_options == {"crf": "32", "deadline": "realtime", "cpu-used": "8",
                                    "row-mt": "1"}  # fmt: skip


def test_seed_query_runs_whole(client: QClient, av_clip: Path, tmp_path: Path):
    """The shape of Qencode's own curl example: an mp4 beside two thumbnails."""
    status = client.run({"source": str(av_clip), "format": [
        {"output": "mp4", "size": "320x240", "video_codec": "libx264", "framerate": "15",
         "keyframe": "25", "start_time": "1", "duration": "2", "user_tag": "video"},
        {"output": "thumbnail", "time": "0.15", "width": "320", "height": "240",
         "user_tag": "15_320x240"},
        {"output": "thumbnail", "time": "0.5", "width": "320", "height": "240",
         "user_tag": "50_320x240"},
    ]}, timeout=120)  # fmt: skip
    assert status["status"] == "completed", status
    assert [i["user_tag"] for i in status["images"]] == ["15_320x240", "50_320x240"]
    [video] = status["videos"]
    assert video["tag"] == "video-0-0" and video["user_tag"] == "video" and video["error"] == 0
    assert video["url"].endswith("/0/video.mp4") and video["duration"] == "2.000"
    response = client.fetch(video["url"])
    assert response.headers["content-type"] == "video/mp4"
    info = ffprobe(response.content, tmp_path, ".mp4")
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (v["width"], v["height"], v["codec_name"], v["r_frame_rate"]) == (
        320,
        240,
        "h264",
        "15/1",
    )
    assert a["codec_name"] == "aac"
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    assert video["size"] == pytest.approx(len(response.content) / 1e6)


def test_webm_with_vp9_and_opus(client: QClient, av_clip: Path, tmp_path: Path):
    status = client.run({"source": str(av_clip), "format": [
        {"output": "webm", "width": 160, "quality": 40, "duration": 1.5},
    ]}, timeout=120)  # fmt: skip
    assert status["status"] == "completed", status
    info = ffprobe(client.fetch(status["videos"][0]["url"]).content, tmp_path, ".webm")
    codecs = {s["codec_type"]: s["codec_name"] for s in info["streams"]}
    assert codecs == {"video": "vp9", "audio": "opus"}
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (v["width"], v["height"]) == (160, 90)


def test_unknown_codec_fails_the_soft_format_alone(client: QClient, av_clip: Path):
    status = client.run({"source": str(av_clip), "format": [
        {"output": "mp4", "video_codec": "libx265", "allow_soft_fail": 1}, {"output": "thumbnail"},
    ]})  # fmt: skip
    assert status["status"] == "completed"
    assert status["videos"][0]["error_description"] == (
        "video_codec 'libx265' is not available for mp4 (libx264)"
    )


def test_start_time_and_duration_clip_a_series(client: QClient, av_clip: Path):
    status = client.run({"source": str(av_clip), "format": [
        {"output": "thumbnails", "interval": 1, "start_time": 2, "duration": 3},
    ]})  # fmt: skip
    frames = [i for i in status["images"] if i["type"] == "frame"]
    assert [f["time"] for f in frames] == [2.0, 3.0, 4.0]
    vtt = client.fetch(next(i["url"] for i in status["images"] if i["type"] == "vtt")).text
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:03.000\nthumb_0001.png\n")
    assert vtt.endswith("00:00:04.000 --> 00:00:05.000\nthumb_0003.png\n")


def test_one_stream_entry_sets_size_rate_and_bitrate(
    client: QClient, av_clip: Path, tmp_path: Path
):
    """Qencode's per-stream form: the stream's fields win over the format's."""
    status = client.run({"source": str(av_clip), "format": [
        {"output": "mp4", "size": "1280x720", "duration": 1,
         "stream": [{"size": "320x240", "framerate": "10", "bitrate": 300, "profile": "main"}]},
    ]}, timeout=120)  # fmt: skip
    assert status["status"] == "completed", status
    info = ffprobe(client.fetch(status["videos"][0]["url"]).content, tmp_path, ".mp4")
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (v["width"], v["height"]) == (320, 240)
    assert v["avg_frame_rate"] == "10/1"
    meta = status["videos"][0]["meta"]  # the names the Java SDK reads, from the file itself
    assert (meta["resolution_width"], meta["resolution_height"], meta["resolution"]) == (
        320, 240, 240)  # fmt: skip
    assert meta["framerate"] == "10" and meta["dar"] == "4:3" and meta["sar"] == "1:1"
    assert meta["codec"] == "h264" and meta["bitrate"] > 0


def test_several_streams_are_refused_at_start(client: QClient, av_clip: Path):
    task = client.new_task()
    query = {"source": str(av_clip), "format": [
        {"output": "mp4", "stream": [{"size": "320x240"}, {"size": "640x480"}]}]}  # fmt: skip
    reply = client.post("start_encode2",
                        {"task_token": task, "query": json.dumps({"query": query})})  # fmt: skip
    assert reply == {"error": 1, "message": "query.format[0].stream has 2 streams; qthumb makes "
                     "one stream per output: use one format per size"}  # fmt: skip


def test_gif_is_an_animation_of_the_clip(client: QClient, clips: Path):
    """`gif`: the clip window at `framerate`, palette-optimised; `image_format: "webp"` makes an
    animated WebP instead (qthumb's extension)."""
    from PIL import Image, ImageSequence

    status = client.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "gif", "start_time": 1, "duration": 2, "framerate": 5, "width": 160},
        {"output": "gif", "duration": 1, "framerate": 4, "size": "96x54", "image_format": "webp"},
    ]}, timeout=120)  # fmt: skip
    assert status["status"] == "completed", status["error_description"]
    gif, webp = status["videos"]
    for entry, fmt, size, frames in ((gif, "GIF", (160, 90), 10), (webp, "WEBP", (96, 54), 4)):
        body = client.fetch(entry["url"]).content
        with Image.open(io.BytesIO(body)) as image:
            assert image.format == fmt and image.size == size
            assert getattr(image, "is_animated", False)
            assert sum(1 for _ in ImageSequence.Iterator(image)) == frames
        assert entry["meta"]["frames"] == frames


def test_a_gif_past_the_frame_limit_is_refused(client: QClient, clips: Path):
    status = client.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "gif", "framerate": 100000}]})  # fmt: skip
    assert status["status"] == "error"
    assert "the limit is 100000 (QTHUMB_MAX_FRAMES_PER_TASK)" in status["error_description"]


def test_start_time_and_duration_cut_at_the_asked_frames(
    client: QClient, clips: Path, tmp_path: Path
):
    """An mp4 with ``start_time`` and ``duration`` of the barcode clip (25 fps, each frame's
    index written in it) begins with the frame at ``start_time`` and ends with the frame
    before ``start_time + duration``: a cut a frame early or late fails."""
    status = client.run({"source": str(clips / "barcode.mp4"), "format": [
        {"output": "mp4", "start_time": "1.6", "duration": "1.2"}]}, timeout=120)  # fmt: skip
    assert status["status"] == "completed", status
    made = tmp_path / "cut.mp4"
    made.write_bytes(client.fetch(status["videos"][0]["url"]).content)
    with av.open(str(made)) as container:
        frames = [barcode_index(f.to_image()) for f in container.decode(video=0)]
    assert frames == list(range(40, 70))  # 1.2 s at 25 fps; 1.6 s is frame 40
