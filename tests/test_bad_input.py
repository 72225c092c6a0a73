"""The bad-input matrix: every case ends in the right API error or a task error with a clear
description; afterwards the service still serves, no work files are left, and no output entry
of a failed format carries a URL."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.conftest import API_KEY, QthumbProcess, ffmpeg, make_qthumb, serving
from tests.qclient import QClient

THUMB = {"output": "thumbnail"}


class _Origin(http.server.SimpleHTTPRequestHandler):
    """Serves the bad sources; /slow never answers within the source read timeout."""

    directory_path: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=self.directory_path, **kwargs)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        if self.path.startswith("/bucket/trickle"):  # an S3 object (path style): its size
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
            self.send_header("Last-Modified", "Sun, 06 Dec 2026 00:00:00 GMT")
            self.end_headers()
            return
        super().do_HEAD()

    def do_GET(self) -> None:
        # a byte every 0.3 s, never idle a whole second; by HTTP, or as an S3 object
        if self.path.startswith(("/trickle", "/bucket/trickle")):
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(100):  # 30 s at most, then it stops by itself
                    self.wfile.write(b"\x00")
                    self.wfile.flush()
                    time.sleep(0.3)
            return
        if self.path.startswith("/redirect/"):  # /redirect/N: N more hops, then a 404
            hops = int(self.path.rsplit("/", 1)[1])
            self.send_response(302)
            self.send_header("Location", f"/redirect/{hops - 1}" if hops else "/missing.mp4")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/slow"):
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"\x00" * 10)
            self.wfile.flush()
            time.sleep(4)
            return
        super().do_GET()


@pytest.fixture(scope="module")
def bad_sources(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Path:
    d = tmp_path_factory.mktemp("bad")
    (d / "page.html").write_text("<!doctype html><html><body>not a video</body></html>")
    (d / "empty.mp4").write_bytes(b"")
    whole = (clips / "testsrc.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    (d / "corrupt.mp4").write_bytes(whole[:32] + bytes(range(256)) * 40)
    shutil.copy(clips / "audio.m4a", d / "audio.m4a")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "1", str(d / "still.png"))
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=16x16:r=1:d=36000", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(d / "ten-hours.mp4"))  # fmt: skip
    return d


@pytest.fixture(scope="module")
def origin(bad_sources: Path) -> Iterator[str]:
    _Origin.directory_path = str(bad_sources)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory, clips: Path, bad_sources: Path, origin: str
) -> Iterator[QthumbProcess]:
    with serving(
        tmp_path_factory.mktemp("bad-input"), clips,
        QTHUMB_S3_INSECURE_ENDPOINTS=origin.removeprefix("http://"),
        QTHUMB_LOCAL_SOURCE_DIRS=f"{clips},{bad_sources}", QTHUMB_SOURCE_READ_TIMEOUT="1",
        QTHUMB_DOWNLOAD_DEADLINE="3", QTHUMB_MAX_REDIRECTS="2",
        QTHUMB_MAX_FORMAT_PIXELS="1000000000",
        QTHUMB_MAX_SOURCE_SECONDS=str(4 * 3600), QTHUMB_MAX_FRAMES_PER_TASK="1000",
    ) as server:  # fmt: skip
        yield server


@pytest.fixture()
def c(guarded: QthumbProcess) -> Iterator[QClient]:
    with QClient(guarded.base_url, API_KEY) as client:
        yield client


def q(fmt: object = THUMB, source: object = "/x.mp4") -> str:
    return json.dumps({"query": {"source": source, "format": [fmt]}})


API_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("malformed JSON", {"query": "{'source': 1"}, 1, "query is not valid JSON"),
    ("JSON array", {"query": "[]"}, 1, "query must be a JSON object"),
    ("JSON string", {"query": '"text"'}, 1, "query must be a JSON object"),
    ("JSON number", {"query": "42"}, 1, "query must be a JSON object"),
    ("inner query a list", {"query": '{"query": [1]}'}, 1, "query.query must be a JSON object"),
    ("not wrapped", {"query": '{"source": "/x", "format": []}'}, 19, "query field is required"),
    ("no format", {"query": '{"query": {"source": "/x"}}'}, 14, "query.format field is required"),
    ("no source", {"query": '{"query": {"format": [{"output": "thumbnail"}]}}'}, 14,
     "query.source field is required"),
    ("format a string", {"query": '{"query": {"source": "/x", "format": "thumbnail"}}'}, 1,
     "query.format must be a list"),
    ("format entry a string", {"query": q("thumbnail")}, 1, "query.format[0] must be an object"),
    ("no output", {"query": q({"time": 0.5})}, 14, "query.format[0].output field is required"),
    ("output a number", {"query": q({"output": 7})}, 1, "query.format[0].output: unknown output"),
    ("unknown output", {"query": q({"output": "avi"})}, 1, "query.format[0].output: unknown"),
    ("time below 0", {"query": q({**THUMB, "time": -1})}, 1, "query.format[0].time must be a"),
    ("time over 100", {"query": q({**THUMB, "time": 101})}, 1, "query.format[0].time must be a"),
    ("time not a number", {"query": q({**THUMB, "time": "soon"})}, 1,
     "query.format[0].time must be a number"),
    ("time a boolean", {"query": q({**THUMB, "time": True})}, 1, "query.format[0].time must be"),
    ("interval 0", {"query": q({"output": "thumbnails", "interval": 0})}, 1,
     "query.format[0].interval must be greater than 0"),
    ("interval negative", {"query": q({"output": "thumbnails", "interval": -5})}, 1,
     "query.format[0].interval must be greater than 0"),
    ("width 0", {"query": q({**THUMB, "width": 0})}, 1, "query.format[0].width must be at least"),
    ("width negative", {"query": q({**THUMB, "width": -5})}, 1, "query.format[0].width must be"),
    ("width huge", {"query": q({**THUMB, "width": 100000})}, 1,
     "query.format[0].width must be at most 16000"),
    ("height not a number", {"query": q({**THUMB, "height": "tall"})}, 1,
     "query.format[0].height must be a number"),
    ("columns 0", {"query": q({"output": "thumbnails", "interval": 1, "columns": 0})}, 1,
     "query.format[0].columns must be at least 1"),
    ("columns negative", {"query": q({"output": "thumbnails", "interval": 1, "columns": -3})},
     1, "query.format[0].columns must be at least 1"),
    ("columns huge", {"query": q({"output": "thumbnails", "interval": 1, "columns": 10**6})},
     1, "query.format[0].columns must be between 1 and 1000"),
    ("unknown image_format", {"query": q({**THUMB, "image_format": "bmp"})}, 1,
     "query.format[0].image_format must be png, jpg, webp or avif"),
    ("quality 0", {"query": q({**THUMB, "quality": 0})}, 1, "query.format[0].quality must be"),
    ("bad size", {"query": q({**THUMB, "size": "10x"})}, 1, "query.format[0].size must look"),
    ("bad resize_mode", {"query": q({**THUMB, "resize_mode": "zoom"})}, 1,
     "query.format[0].resize_mode must be scale, crop or pad"),
    ("source a number", {"query": q(source=5)}, 1, "query.source must be a string"),
    ("destination a number", {"query": q({**THUMB, "destination": 42})}, 1,
     "query.format[0].destination must be an object with a url"),
    ("destination without url", {"query": q({**THUMB, "destination": {"key": "k"}})}, 14,
     "query.format[0].destination.url field is required"),
    # budgets the query alone decides are refused before any source is fetched
    ("gif past the pixel budget", {"query": q({"output": "gif", "size": "4000x4000",
                                              "framerate": 60, "duration": 5})}, 1,
     "query.format[0]: 300 frames of 4000x4000 are 4800000000 pixels in all; the limit is "
     "1000000000 (QTHUMB_MAX_FORMAT_PIXELS)"),
    ("an hour of gif at 60 fps", {"query": q({"output": "gif", "width": 320, "height": 180,
                                              "framerate": 60, "duration": 3600})}, 1,
     "query.format[0] asks for 216000 frames (3600 s at 60 fps); the limit is 1000 frames a "
     "task (QTHUMB_MAX_FRAMES_PER_TASK): use a shorter duration or a lower framerate"),
    ("too many pixels", {"query": q({**THUMB, "size": "16000x16000"})}, 1,
     "query.format[0]: an output of 16000x16000 is 256000000 pixels; the limit is 64000000"),
    ("payload too long", {"query": q(), "payload": "p" * 1001}, 9,
     "payload is too long (1000 characters at most)"),
    ("10,000 formats", {"query": json.dumps({"query": {"source": "/x",
                                                       "format": [THUMB] * 10_000}})}, 1,
     "query.format has 10000 formats; the limit is 100 (QTHUMB_MAX_FORMATS)"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "code", "message"), [c[1:] for c in API_CASES],
                         ids=[c[0] for c in API_CASES])  # fmt: skip
def test_api_refusals(c: QClient, data: dict[str, Any], code: int, message: str):
    task = c.new_task()
    reply = c.post("start_encode2", {"task_token": task, **data})
    assert reply["error"] == code and reply["message"].startswith(message), reply
    assert c.status(task)["status"] == "created"  # refused: nothing started


TASK_CASES: list[tuple[str, Any, Any, str]] = [
    ("source 404", "{origin}/missing.mp4", THUMB, "source: HTTP 404 from {origin}/missing.mp4"),
    ("source times out", "{origin}/slow.mp4", THUMB, "source {origin}/slow.mp4: timed out"),
    ("source trickles past the deadline", "{origin}/trickle.mp4", THUMB,
     "source {origin}/trickle.mp4: not downloaded within 3 s (QTHUMB_DOWNLOAD_DEADLINE)"),
    ("S3 source trickles past the deadline", "s3://k:s@{host}/bucket/trickle.mp4", THUMB,
     "source s3://{host}/bucket/trickle.mp4: not downloaded within 3 s "
     "(QTHUMB_DOWNLOAD_DEADLINE)"),
    ("source redirects too often", "{origin}/redirect/9", THUMB,
     "source {origin}/redirect/9: {origin}/redirect/9: more than 2 redirects"),
    ("source redirects within the cap", "{origin}/redirect/1", THUMB,
     "source: HTTP 404 from {origin}/redirect/1"),
    ("source is HTML", "{origin}/page.html", THUMB, "source is not a media file qthumb can read"),
    ("source is empty", "{origin}/empty.mp4", THUMB, "source {origin}/empty.mp4: the response "
     "was empty"),
    ("source is truncated", "{bad}/truncated.mp4", THUMB, "source is not a media file qthumb"),
    ("source is a corrupt mp4", "{bad}/corrupt.mp4", THUMB, "source is not a media file qthumb"),
    ("source is audio only", "{bad}/audio.m4a", THUMB, "source has no video stream (found: "
     "audio); thumbnails need a video track"),
    ("source is an image", "{bad}/still.png", THUMB, "source is not a media file qthumb can "
     "read"),
    ("source is 10 hours long", "{bad}/ten-hours.mp4", THUMB, "source is 10:00:00 long; the "
     "limit is 4:00:00 (QTHUMB_MAX_SOURCE_SECONDS)"),
    ("too many frames", "{clips}/testsrc.mp4", {"output": "thumbnails", "interval": 0.001},
     "the query asks for 6000 frames; the limit is 1000 (QTHUMB_MAX_FRAMES_PER_TASK)"),
    ("gif past the pixel budget", "{clips}/testsrc.mp4",  # its length decides: 6 s at 60 fps
     {"output": "gif", "size": "4000x4000", "framerate": 60},
     "360 frames of 4000x4000 are 5760000000 pixels in all; the limit is 1000000000 "
     "(QTHUMB_MAX_FORMAT_PIXELS): fewer or smaller frames"),
    ("series past the pixel budget", "{clips}/testsrc.mp4",
     {"output": "thumbnails", "interval": 0.05, "size": "4000x4000"},
     "120 frames of 4000x4000 are 1920000000 pixels in all; the limit is 1000000000"),
    ("too many pixels", "{clips}/testsrc.mp4", {**THUMB, "width": 16000},  # 16000x9000
     "output of 16000x9000 is 144000000 pixels; the limit is 64000000"),
    ("destination s3:// alone", "{clips}/testsrc.mp4", {**THUMB, "destination": {"url": "s3://"}},
     "destination s3://: 's3://' is not an s3://host/bucket/key URL"),
    ("destination without bucket", "{clips}/testsrc.mp4",
     {**THUMB, "destination": {"url": "s3://example.com"}},
     "destination s3://example.com: 's3://example.com' names no bucket"),
    ("destination ftp", "{clips}/testsrc.mp4", {**THUMB, "destination": {"url": "ftp://h/x"}},
     "destination ftp://h/x: ftp:// destinations are not supported"),
    ("destination not a URL", "{clips}/testsrc.mp4",
     {**THUMB, "destination": {"url": "not a url"}}, "destination 'not a url' is not a URL"),
    ("destination key escapes", "{clips}/testsrc.mp4",
     {**THUMB, "destination": {"url": "s3://127.0.0.1:9/b/../../etc/passwd"}},
     "destination s3://127.0.0.1:9/b/../../etc/passwd: the key may not start with / or hold"),
    ("destination key absolute", "{clips}/testsrc.mp4",
     {**THUMB, "destination": {"url": "s3://127.0.0.1:9/b//etc/passwd"}},
     "destination s3://127.0.0.1:9/b//etc/passwd: the key may not start with /"),
    ("destination key with NUL", "{clips}/testsrc.mp4",
     {**THUMB, "destination": {"url": "s3://127.0.0.1:9/b/a\u0000.png"}},
     "destination s3://127.0.0.1:9/b/a\\x00.png: the URL holds a control character"),
    ("local path outside the allowed folders", "/etc/passwd", THUMB,
     "source /etc/passwd: local files must be inside QTHUMB_LOCAL_SOURCE_DIRS"),
    ("local path with ..", "{clips}/../../../etc/passwd", THUMB,
     "source {clips}/../../../etc/passwd: local files must be inside QTHUMB_LOCAL_SOURCE_DIRS"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "fmt", "description"), [c[1:] for c in TASK_CASES],
                         ids=[c[0] for c in TASK_CASES])  # fmt: skip
def test_task_failures(
    c: QClient, guarded: QthumbProcess, origin: str, bad_sources: Path, clips: Path,
    source: str, fmt: Any, description: str,
):  # fmt: skip
    fill = {
        "origin": origin,
        "host": origin.removeprefix("http://"),
        "bad": str(bad_sources),
        "clips": str(clips),
    }
    # upscale: 1, so a gif larger than the source is made (and meets its limit)
    query = {"source": source.format(**fill), "format": [fmt], "upscale": 1}
    status = c.run(query, timeout=90)
    assert status["status"] == "error" and status["error"] == 1, status
    # a format's own failure names it first (it fails the task: no allow_soft_fail)
    said = re.sub(
        r"^format 0 \((thumbnail|thumbnails|gif|mp4)\): ", "", status["error_description"]
    )
    assert said.startswith(description.format(**fill)), status
    assert "Traceback" not in status["error_description"]
    assert all(entry["url"] is None for entry in status["images"] if entry.get("error"))
    # the service still serves, and the worker left nothing behind
    assert c.post("access_token", {"api_key": API_KEY})["error"] == 0
    work = guarded.data_dir / "work"
    assert not work.exists() or list(work.iterdir()) == []


def test_request_body_over_the_limit_is_413(c: QClient):
    body = b"query=" + b"x" * (2 * 1024 * 1024)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = c.http.post("/v1/start_encode2", content=body, headers=form)
    assert response.status_code == 413
    assert response.json() == {"error": 1, "message": "request body is over 1048576 bytes"}


def test_active_tasks_per_key_are_limited(tmp_path: Path, clips: Path):
    server = make_qthumb(tmp_path, clips, QTHUMB_MAX_ACTIVE_TASKS_PER_KEY="2")
    server.listen("api")  # no workers: tasks stay queued
    try:
        with QClient(server.base_url, API_KEY) as client:
            for _ in range(2):
                client.start({"source": "/x.mp4", "format": [THUMB]})
            task = client.new_task()
            reply = client.post("start_encode2", {"task_token": task, "query": q()})
        assert reply["error"] == 8
        assert reply["message"] == (
            "this API key has 2 tasks queued or running; the limit is 2: retry when some have "
            "finished"
        )
    finally:
        server.stop()
