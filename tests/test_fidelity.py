"""Drop-in fidelity, round three (#25): a failing output fails the task unless it has
``allow_soft_fail``; ``upscale``; ``rotate``, ``aspect_ratio``, ``audio_mute`` and ``logo``
acted on; ``videos[]`` entries while they are made; ``retry_on_error``; one rule for warning
tags. On both backends (``client``), through the Python SDK where a user's code would be."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import qencode3
from PIL import Image

from qthumb.app.qencode.formats import FormatSpec
from qthumb.app.qencode.query import parse_query
from qthumb.app.settings import Settings
from qthumb.app.storage.files import open_files
from qthumb.app.tasks.model import TaskStatus
from qthumb.app.tasks.results import Results, Running
from qthumb.app.tasks.wire import output_arrays
from qthumb.app.testing import QthumbServer
from qthumb.workers.tasks.pipeline import Hooks, run_query
from qthumb.workers.tasks.storage import Storage, temporary_storage
from tests.conftest import API_KEY, ffmpeg, serving
from tests.qclient import QClient

make_client = qencode3.client  # (see tests/test_sdks.py: the SDK replaces it on first use)


@pytest.fixture(scope="module")
def halves(clips: Path) -> Path:
    """320x180, its left half red and its right half blue, with a 440 Hz tone: where "left"
    went says how the picture was turned."""
    path = clips / "halves.mp4"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "color=c=red:s=160x180:r=25:d=3", "-f", "lavfi",
               "-i", "color=c=blue:s=160x180:r=25:d=3", "-f", "lavfi",
               "-i", "sine=frequency=440:duration=3", "-filter_complex", "[0][1]hstack[v]",
               "-map", "[v]", "-map", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-shortest", str(path))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def logo(clips: Path) -> Path:
    path = clips / "logo.png"
    Image.new("RGBA", (20, 20), (0, 255, 0, 255)).save(path)
    (clips / "not-a-logo.png").write_text("this is not an image")
    return path


def image_of(client: QClient, entry: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(client.fetch(entry["url"]).content)).convert("RGB")


def video_frame(client: QClient, entry: dict[str, Any], at: float = 0.0) -> Image.Image:
    with av.open(io.BytesIO(client.fetch(entry["url"]).content)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= at:
                return frame.to_image()
    raise AssertionError(f"no frame at {at} s")


def near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 60) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


# 1. failure semantics ------------------------------------------------------------------------


def test_a_failing_output_fails_the_task_unless_it_may_soft_fail(client: QClient, halves: Path):
    bad = {"output": "mp4", "video_codec": "libx265"}
    status = client.run({"source": str(halves), "format": [bad, {"output": "thumbnail"}]})
    assert status["status"] == "error" and status["error"] == 1
    assert status["error_description"].startswith("format 0 (mp4): video_codec 'libx265'")
    assert status["videos"][0]["error"] == 1 and status["videos"][0]["tag"] == "video-0-0"
    assert status["images"] == []  # the task stopped there

    soft = {**bad, "allow_soft_fail": 1}
    status = client.run({"source": str(halves), "format": [soft, {"output": "thumbnail"}]})
    assert status["status"] == "completed" and status["error"] == 0
    assert status["videos"][0]["error"] == 1 and len(status["images"]) == 1
    assert [w["tag"] for w in status["warnings"]] == ["video-0-0"]

    # outputs qthumb does not make at all keep their own entry, a warning, and the rest
    status = client.run({"source": str(halves), "format": [{"output": "mp3"},
                                                          {"output": "thumbnail"}]})  # fmt: skip
    assert status["status"] == "completed"
    assert status["audios"][0]["error"] == 1 and len(status["images"]) == 1


def test_an_unreachable_destination_fails_the_task(client: QClient, halves: Path):
    dest = {"url": "s3://127.0.0.1:9/bucket/poster.png", "key": "k", "secret": "s"}
    status = client.run({"source": str(halves),
                         "format": [{"output": "thumbnail", "destination": dest}]})  # fmt: skip
    assert status["status"] == "error"
    assert status["error_description"].startswith("format 0 (thumbnail): destination")


# 2. upscale ---------------------------------------------------------------------------------


def test_video_outputs_larger_than_the_source_are_not_made(client: QClient, halves: Path):
    big, small = {"output": "mp4", "height": 720}, {"output": "webm", "height": 90}
    poster = {"output": "thumbnail", "height": 720}
    status = client.run({"source": str(halves), "format": [big, small, poster]})
    assert status["status"] == "completed"
    assert [v["tag"] for v in status["videos"]] == ["video-1-0"]
    assert status["images"][0]["height"] == 720  # images are made as asked
    assert [w["tag"] for w in status["warnings"]] == ["video-0-0"]
    assert "larger than the 320x180 source" in status["warnings"][0]["details"]

    # all larger: the first alone, at the source's size
    status = client.run({"source": str(halves), "format": [big, {**big, "output": "webm"}]})
    assert [(v["tag"], v["meta"]["height"]) for v in status["videos"]] == [("video-0-0", 180)]
    # asked for
    status = client.run({"source": str(halves), "upscale": 1, "format": [big]})
    assert status["videos"][0]["meta"]["height"] == 720


# 3. rotate, aspect_ratio, audio_mute, logo ---------------------------------------------------


def test_rotate_and_aspect_ratio_on_every_kind_of_output(client: QClient, halves: Path):
    turned = {"rotate": 90}
    status = client.run({"source": str(halves), "format": [
        {"output": "thumbnail", **turned},
        {"output": "thumbnails", "interval": 1, "sprite": 1, "columns": 3, **turned},
        {"output": "mp4", **turned},
        {"output": "gif", "duration": 1, **turned},
        {"output": "thumbnail", "aspect_ratio": "1:1"},
        {"output": "thumbnail", "rotate": 270, "aspect_ratio": "16:9", "height": 90},
    ]})  # fmt: skip
    assert status["status"] == "completed", status
    poster = image_of(client, status["images"][0])
    # turned clockwise: the left half (red) is now on top
    assert poster.size == (180, 320)
    assert near(poster.getpixel((90, 40)), RED) and near(poster.getpixel((90, 280)), BLUE)
    sprite = next(e for e in status["images"] if e["type"] == "sprite")
    sheet = image_of(client, sprite)
    assert near(sheet.getpixel((90, 40)), RED) and near(sheet.getpixel((90, 280)), BLUE)
    video, gif = status["videos"]
    assert (video["meta"]["width"], video["meta"]["height"]) == (180, 320)
    frame = video_frame(client, video)
    assert near(frame.getpixel((90, 40)), RED) and near(frame.getpixel((90, 280)), BLUE)
    assert (gif["meta"]["width"], gif["meta"]["height"]) == (180, 320)
    square = image_of(client, status["images"][-2])
    assert square.size == (180, 180)
    assert near(square.getpixel((20, 90)), RED) and near(square.getpixel((160, 90)), BLUE)
    wide = image_of(client, status["images"][-1])
    assert wide.size == (160, 90)  # turned (180x320), then shown at 16:9, 90 high
    # counter-clockwise: red (the left) is now at the bottom
    assert near(wide.getpixel((80, 80)), RED) and near(wide.getpixel((80, 10)), BLUE)


def audio_levels(data: bytes) -> tuple[float, float]:
    """(seconds of audio, its loudest sample) of an encoded file."""
    with av.open(io.BytesIO(data)) as container:
        samples = [frame.to_ndarray() for frame in container.decode(audio=0)]
    joined = np.concatenate([s.reshape(-1) for s in samples])
    rate = container.streams.audio[0].rate if container.streams.audio else 48000
    per_channel = sum(s.shape[-1] for s in samples)
    return per_channel / rate, float(np.abs(joined).max())


def test_audio_mute_keeps_a_silent_track_as_long_as_the_sound(client: QClient, halves: Path):
    status = client.run({"source": str(halves), "format": [
        {"output": "mp4"}, {"output": "mp4", "audio_mute": 1},
        {"output": "webm", "audio_mute": 1},
    ]})  # fmt: skip
    loud, muted, muted_webm = (client.fetch(v["url"]).content for v in status["videos"])
    loud_seconds, loud_peak = audio_levels(loud)
    muted_seconds, muted_peak = audio_levels(muted)
    assert loud_peak > 0.1 and muted_peak == 0.0
    assert abs(muted_seconds - loud_seconds) < 0.05 and muted_seconds > 2.5
    assert audio_levels(muted_webm)[1] == 0.0


def test_logos_on_videos_and_images(client: QClient, halves: Path, logo: Path):
    corner = {"source": str(logo), "x": -10, "y": -10}
    timed = {"source": logo.as_uri(), "x": 10, "y": 10, "opacity": 0.5, "start_time": 0,
             "duration": 1}  # fmt: skip
    status = client.run({"source": str(halves), "format": [
        {"output": "mp4", "logo": [corner, timed]},
        {"output": "thumbnail", "logo": corner},
        {"output": "thumbnails", "interval": 1, "logo": corner},
    ]})  # fmt: skip
    assert status["status"] == "completed", status
    early, late = (video_frame(client, status["videos"][0], at) for at in (0.2, 2.0))
    assert near(early.getpixel((300, 160)), GREEN) and near(late.getpixel((300, 160)), GREEN)
    assert near(early.getpixel((20, 20)), (128, 128, 0), 50)  # half green over red
    assert near(late.getpixel((20, 20)), RED)  # its second has passed
    for entry in status["images"]:
        if entry["type"] != "vtt":
            picture = image_of(client, entry)
            assert near(picture.getpixel((picture.width - 20, picture.height - 20)), GREEN)
            assert near(picture.getpixel((20, 20)), RED)


def test_a_logo_that_cannot_be_had_fails_its_format(client: QClient, halves: Path, logo: Path):
    for source, says in ((str(logo.parent / "not-a-logo.png"), "not a PNG or JPEG"),
                         ("http://127.0.0.1:9/logo.png", "logo http://127.0.0.1:9/logo.png"),
                         (str(logo.parent / "missing.png"), "logo ")):  # fmt: skip
        mp4 = {"output": "mp4", "logo": {"source": source}}
        status = client.run({"source": str(halves), "format": [mp4]})
        assert status["status"] == "error", source
        assert status["error_description"].startswith("format 0 (mp4): logo"), status
        assert says in status["error_description"]


# 4. videos[] while they are made -------------------------------------------------------------


def test_video_entries_grow_while_they_are_made(tmp_path: Path, halves: Path):
    settings = Settings(data_dir=tmp_path / "data", local_source_dirs=["/"])
    files = open_files(settings)
    query = parse_query({"source": str(halves), "format": [{"output": "thumbnail"},
                                                           {"output": "mp4"}]})  # fmt: skip
    seen: list[tuple[str, str, float]] = []
    live: list[Results] = []

    def progress(status: TaskStatus, percent: float) -> None:
        for entry in output_arrays(live[0], None)["videos"]:
            seen.append((status.value, entry["status"], entry["percent"]))

    hooks = Hooks(progress=progress, live=live.append)
    work = tmp_path / "work"
    work.mkdir()

    def storage(spec: FormatSpec, destination: object) -> Storage:
        return temporary_storage(files, "t" * 32, spec.index)

    results = run_query(query, settings, files, work, storage, hooks)
    encoding = [p for s, state, p in seen if state == "encoding"]
    assert encoding and encoding == sorted(encoding) and encoding[-1] > 50
    assert all(isinstance(p, float) for p in encoding)
    assert ("encoding", "saving", 100.0) in seen
    assert not any(isinstance(m, Running) for m in results.made)
    final = output_arrays(results, None)["videos"][0]
    assert final["status"] == "completed" and final["percent"] == 100.0


# 5. retry_on_error -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def steered(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[QthumbServer]:
    with serving(tmp_path_factory.mktemp("retry"), clips) as process:
        server = QthumbServer(process.base_url, API_KEY, clips, None)
        yield server
        server.callbacks.close()


def test_retry_on_error(steered: QthumbServer, clips: Path):
    server, hooks = steered, steered.callbacks
    source = str(clips / "testsrc.mp4")
    client = make_client(API_KEY, api_url=server.url)
    query = {"source": source, "retry_on_error": 1, "callback_url": hooks.url,
             "format": [{"output": "thumbnail", "user_tag": "once"}]}  # fmt: skip
    # fails once while encoding: the retry succeeds
    with server.fault({"task": {"user_tag": "once"}, "fail_at": "encoding", "times": 1}):
        task = client.create_task()
        task.custom_start({"query": query})
        first = server.wait(task.task_token)
    assert first["status"] == "error"
    messages = [w["message"] for w in first["warnings"]]
    assert messages[-2:] == ["An error occurred while processing your job. It will be "
                             "automatically retried with the same parameters in a new "
                             "job.", "Retry on error triggered."]  # fmt: skip
    retry = first["warnings"][-1]["details"].rsplit(" ", 1)[-1]
    assert server.wait(retry)["status"] == "completed"
    restarted = hooks.wait_for("restarted", task.task_token)
    assert restarted["status"]["status"] == "error"
    hooks.wait_for("saved", task.task_token)
    assert hooks.events(task.task_token) == ["queued", "error", "restarted", "saved"]
    # fails every time: the retry ran, so it ends with its own error; restart_failed is only
    # for a retry that could not start (Qencode's documented meaning)
    with server.fault({"task": {"user_tag": "again"}, "fail_at": "encoding"}):
        again = {**query, "format": [{"output": "thumbnail", "user_tag": "again"}]}
        task = client.create_task()
        task.custom_start({"query": again})
        first = server.wait(task.task_token)
        retry = first["warnings"][-1]["details"].rsplit(" ", 1)[-1]
        ended = hooks.wait_for("error", retry)  # the retry's own, delivered
    assert ended["status"]["status"] == "error"
    hooks.wait_for("saved", task.task_token)  # the last of the original's events
    assert hooks.events(task.task_token) == ["queued", "error", "restarted", "saved"]
    assert "Retry on error failed." not in [w["message"] for w in
                                            server.wait(task.task_token)["warnings"]]  # fmt: skip
    # a source that cannot be had is not retried
    with server.fault({"task": {"user_tag": "source"}, "fail_at": "downloading"}):
        task = client.create_task()
        task.custom_start({"query": {**query, "format": [
            {"output": "thumbnail", "user_tag": "source"}]}})  # fmt: skip
        status = server.wait(task.task_token)
    assert status["status"] == "error"
    assert not any(w["message"].startswith("Retry") for w in status["warnings"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rotate": 45}, "query.format[0].rotate must be 90, 180 or 270, got 45"),
        ({"aspect_ratio": "wide"}, "query.format[0].aspect_ratio must look like 16:9"),
        ({"aspect_ratio": "100:1"}, "query.format[0].aspect_ratio must be between 1:10"),
        ({"logo": {"x": 1}}, "query.format[0].logo.source field is required"),
        ({"logo": [{"source": "a.png"}, 5]}, "query.format[0].logo[1] must be an object"),
        ({"logo": {"source": "a.png", "opacity": 2}}, "query.format[0].logo.opacity must be"),
        ({"logo": {"source": "http:///l.png"}}, "query.format[0].logo.source: the URL names no"),
        ({"stream": [{"rotate": 7}]}, "query.format[0].stream[0].rotate must be 90"),
        ({"allow_soft_fail": 2}, "query.format[0].allow_soft_fail must be 0 or 1"),
    ],
)
def test_bad_transforms_are_refused_naming_the_field(fields: dict[str, Any], message: str):
    from qthumb.app.errors import QencodeError

    with pytest.raises(QencodeError) as refused:
        parse_query({"source": "/x.mp4", "format": [{"output": "mp4", **fields}]})
    assert refused.value.message.startswith(message), refused.value.message
