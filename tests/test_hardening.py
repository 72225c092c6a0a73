"""Hardening, round two: each hole a hostile tester found stays closed. The server runs under a
memory watchdog (tests/watchdog.py), so a query that makes memory run away fails its test and
is killed before it can hurt the machine."""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, QthumbProcess, eventually, ffmpeg, serving
from tests.qclient import QClient
from tests.watchdog import MemoryWatchdog

WATCHDOG_MB = 1500
SECRETS = ["AKIAUSERINFO", "USERINFOSECRET", "FIELDKEY123", "FIELDSECRET456", "SIGSECRET789",
           "CREDSECRET012", "CBSECRET345", "PASSWORD678"]  # fmt: skip


@pytest.fixture(scope="module")
def hostile_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=16x16:r=1:d=36000", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(d / "ten-hours.mp4"))  # fmt: skip
    # 5 s of video whose Matroska header says 10 hours (the Duration element rewritten).
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=5", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(d / "honest.mkv"))  # fmt: skip
    data = bytearray((d / "honest.mkv").read_bytes())
    at = data.find(bytes([0x44, 0x89, 0x88]))  # Duration, 8-byte float, in timecode units (ms)
    assert at > 0 and struct.unpack(">d", data[at + 3 : at + 11]) == (5000.0,)
    data[at + 3 : at + 11] = struct.pack(">d", 36_000_000.0)
    (d / "liar.mkv").write_bytes(bytes(data))
    # Pixel bombs, tiny on disk: 4096x4096 frames (16.8 Mpx, over this server's 10 Mpx), and a
    # stream whose header says 64x48 and whose frames grow to 4096x4096 after 2 s.
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=4096x4096:r=25:d=0.2", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(d / "huge.mp4"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=2", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", "-f", "mpegts", str(d / "small.ts"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=4096x4096:r=25:d=1", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-output_ts_offset", "2", "-f",
           "mpegts", str(d / "big.ts"))  # fmt: skip
    (d / "grows.ts").write_bytes((d / "small.ts").read_bytes() + (d / "big.ts").read_bytes())
    return d


@pytest.fixture(scope="module")
def hostile(
    tmp_path_factory: pytest.TempPathFactory, clips: Path, hostile_media: Path
) -> Iterator[tuple[QthumbProcess, MemoryWatchdog]]:
    with serving(
        tmp_path_factory.mktemp("hostile-server"), clips, workers=1,
        QTHUMB_LOCAL_SOURCE_DIRS=f"{clips},{hostile_media}", QTHUMB_ALLOWED_NETWORKS="",
        QTHUMB_MAX_OUTPUT_PIXELS="4000000", QTHUMB_CALLBACK_ATTEMPTS="1",
        QTHUMB_MAX_SOURCE_PIXELS="10000000", QTHUMB_WORKER_MEMORY_LIMIT=str(500 << 20),
    ) as server:  # fmt: skip
        with MemoryWatchdog(server.procs[0].pid, WATCHDOG_MB) as watchdog:
            yield server, watchdog
        assert watchdog.tripped is None, watchdog.tripped


@pytest.fixture()
def c(hostile: tuple[QthumbProcess, MemoryWatchdog]) -> Iterator[QClient]:
    with QClient(hostile[0].base_url, API_KEY) as client:
        yield client


def refused(c: QClient, query: str) -> dict[str, Any]:
    reply = c.post("start_encode2", {"task_token": c.new_task(), "query": query})
    assert reply["error"] != 0, reply
    return reply


def one(fmt: dict[str, Any], source: str = "/x.mp4") -> str:
    return json.dumps({"query": {"source": source, "format": [fmt]}})


# 1, 5: counts, sizes and times a query implies, refused at start_encode2 (error 1, the field).
@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ({"output": "thumbnails", "interval": 1e-7},
         "query.format[0].interval must be at least 0.001 s"),
        ({"output": "thumbnails", "interval": 1e-9},
         "query.format[0].interval must be at least 0.001 s"),
        ({"output": "thumbnails", "interval": 5e-324},
         "query.format[0].interval must be at least 0.001 s"),
        ({"output": "thumbnails", "interval": "1e-300"},
         "query.format[0].interval must be at least 0.001 s"),
        ({"output": "thumbnails", "interval": 0.001, "duration": 3600},
         "query.format[0] asks for 3600000 frames (3600 s every 0.001 s); the limit is 100000 "
         "frames a task (QTHUMB_MAX_FRAMES_PER_TASK)"),
        ({"output": "thumbnail", "frame_number": 1e18},
         "query.format[0].frame_number is 1000000000000000000, past the last frame of the "
         "longest source"),
        ({"output": "thumbnail", "start_time": 1e308},
         "query.format[0].start_time is 1e+308 s, past the longest source qthumb accepts"),
        ({"output": "thumbnails", "interval": 1, "start_time": 1e308},
         "query.format[0].start_time is 1e+308 s"),
        ({"output": "thumbnail", "time": 10**400}, "query.format[0].time must be a finite number"),
        ({"output": "thumbnail", "width": "1e400"}, "query.format[0].width must be a finite"),
    ],
)  # fmt: skip
def test_what_a_query_implies_is_refused_at_start(c: QClient, fmt: dict, message: str):
    reply = refused(c, one(fmt))
    assert reply["error"] == 1 and reply["message"].startswith(message), reply


def test_a_number_too_long_for_json_is_a_query_error(c: QClient):
    reply = refused(c, '{"source": "/x.mp4", "format": [{"output": "thumbnail", "time": '
                    + "9" * 5000 + "}]}")  # fmt: skip
    assert reply["error"] == 1 and reply["message"].startswith("query is not valid JSON")


def test_interval_past_the_frame_limit_fails_at_once_with_the_setting(
    c: QClient, hostile: tuple[QthumbProcess, MemoryWatchdog], hostile_media: Path
):
    """The count is computed, not built: 36 million times on a 10-hour source fail at once."""
    source = str(hostile_media / "ten-hours.mp4")
    status = c.run({"source": source, "format": [{"output": "thumbnails", "interval": 0.001}]})
    assert status["status"] == "error"
    assert status["error_description"] == (
        "the query asks for 36000000 frames; the limit is 100000 (QTHUMB_MAX_FRAMES_PER_TASK): "
        "use a longer interval"
    )
    assert hostile[1].peak_mb < 500, hostile[1].peak_mb


def test_a_large_gif_is_made_without_holding_its_frames(
    c: QClient, hostile: tuple[QthumbProcess, MemoryWatchdog], clips: Path
):
    """The gif bomb scaled down: 40 frames of 2000x2000 (each within this server's 4 Mpx). A
    palette from every frame used to hold them all (640 MB of frames); two passes hold none, so
    the encoder child makes it under the server's 500 MiB QTHUMB_WORKER_MEMORY_LIMIT."""
    gif = {"output": "gif", "size": "2000x2000", "framerate": 10, "duration": 4}
    query = {"source": str(clips / "testsrc.mp4"), "upscale": 1, "format": [gif]}
    # 36-52 s in full runs on 2 cores, and past 60 s once while the suite's other processes ran
    status = c.run(query, timeout=150)
    assert status["status"] == "completed", status["error_description"]
    [made] = status["videos"]
    assert made["meta"]["frames"] == 40 and made["meta"]["width"] == 2000
    assert hostile[1].peak_mb < 400, hostile[1].peak_mb


def test_times_past_the_source_give_its_last_frame(c: QClient, clips: Path):
    source = str(clips / "index.mp4")  # 100 frames at 25 fps
    status = c.run({"source": source, "format": [
        {"output": "thumbnail", "start_time": 5000},
        {"output": "thumbnail", "frame_number": 10**6},
        {"output": "thumbnails", "interval": 1, "start_time": 5000},
    ]})  # fmt: skip
    assert status["status"] == "completed", status["error_description"]
    times = [image["time"] for image in status["images"] if image["type"] != "vtt"]
    assert all(abs(t - 3.96) < 1e-6 for t in times if t is not None), times


# 2: sheets stay within QTHUMB_MAX_OUTPUT_PIXELS (4,000,000 here).
def test_sheets_are_split_to_stay_within_the_pixel_limit(c: QClient, clips: Path):
    status = c.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnails", "interval": 1, "size": "1000x2000", "sprite": 1, "columns": 4,
         "image_format": "jpg"}]})  # fmt: skip
    assert status["status"] == "completed", status["error_description"]
    sheets = [i for i in status["images"] if i["type"] == "sprite"]
    assert len(sheets) == 3  # 6 tiles of 2 Mpx: two a sheet
    assert all(s["width"] * s["height"] <= 4_000_000 for s in sheets), sheets
    vtt = next(i for i in status["images"] if i["url"].endswith(".vtt"))
    text = c.fetch(vtt["url"]).text
    cues = re.findall(r"(sprite_\d+\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)", text)
    assert [cue[0] for cue in cues] == ["sprite_01.jpg"] * 2 + ["sprite_02.jpg"] * 2 + [
        "sprite_03.jpg"] * 2  # fmt: skip
    assert {(int(x), int(y)) for _, x, y, _, _ in cues} == {(0, 0), (1000, 0)}


def test_a_tile_alone_over_the_limit_is_a_clear_error(c: QClient, clips: Path):
    """Refused by start_encode2 when the query fixes the size, by the worker when the
    source's shape decides it (3000 wide of a 16:9 source: 3000x1688)."""
    task = c.new_task()
    query = {"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnails", "interval": 1, "size": "3000x2000", "sprite": 1}]}  # fmt: skip
    reply = c.post("start_encode2", {"task_token": task, "query": json.dumps({"query": query})})
    assert (reply["error"], reply["message"]) == (1, (
        "query.format[0]: an output of 3000x2000 is 6000000 pixels; the limit is 4000000 "
        "(QTHUMB_MAX_OUTPUT_PIXELS)"))  # fmt: skip
    status = c.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnails", "interval": 1, "width": 3000, "sprite": 1}]})  # fmt: skip
    assert status["status"] == "error"
    assert status["error_description"] == (
        "format 0 (thumbnails): output of 3000x1688 is 5064000 pixels; the limit is 4000000 "
        "(QTHUMB_MAX_OUTPUT_PIXELS)"
    )


# 4: no HTTP 500 for any parse of client data.
@pytest.mark.parametrize(
    "value",
    ["[" * 100_000 + "]" * 100_000, "[" + "9" * 5000 + "]", "[1, 2]", '[{"a": 1}]', "[null]",
     '["' + "a" * 31 + '\u00b2"]'],
)  # fmt: skip
def test_bad_task_tokens_are_error_13(c: QClient, value: str):
    response = c.http.post("/v1/status", data={"task_tokens": value})
    assert response.status_code == 200
    assert response.json()["error"] == 13, response.json()


@pytest.mark.parametrize("index", ["%C2%B2", "%D9%A3", "1%0A", "99999999999999999999", "-1"])
def test_storage_paths_with_odd_digits_are_404(c: QClient, index: str):
    response = c.http.get(f"/storage/{'a' * 32}/{index}/thumbnail.png")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "headers_body",
    [({"Content-Type": "multipart/form-data"}, b"x"),
     ({"Content-Type": "multipart/form-data; boundary=zz"}, b"--zz\r\nbroken"),
     ({"Content-Type": "application/x-www-form-urlencoded"}, b"query=%ZZ&task_tokens=%FF%FE"),
     ({"Content-Type": "application/x-www-form-urlencoded; charset=nope"}, b"a=b")],
)  # fmt: skip
def test_malformed_forms_are_qencode_errors(c: QClient, headers_body: tuple[dict, bytes]):
    headers, body = headers_body
    for method in ("status", "start_encode2", "access_token"):
        response = c.http.post(f"/v1/{method}", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert isinstance(response.json()["error"], int)


# 5: URLs no request could be made to are named when the query arrives.
@pytest.mark.parametrize(
    ("query", "message"),
    [({"source": "http://[::1/x.mp4"}, "query.source: not a valid URL"),
     ({"source": "https://h:abc/x.mp4"}, "query.source: not a valid URL"),
     ({"source": "http://a..b/x.mp4"}, "query.source: the host 'a..b' is not a valid name"),
     ({"source": "/x.mp4", "callback_url": "http://h:99999/"},
      "query.callback_url: port 99999 is out of range"),
     ({"source": "/x.mp4", "callback_url": "ftp://h/"},
      "query.callback_url: not an http(s) URL")],
)  # fmt: skip
def test_invalid_urls_are_refused_at_start(c: QClient, query: dict, message: str):
    reply = refused(c, json.dumps({"query": {**query, "format": [{"output": "thumbnail"}]}}))
    assert reply["error"] == 1 and reply["message"].startswith(message), reply


# 7: credentials never repeated; allowed folders never revealed.
def test_credentials_never_appear_in_descriptions_warnings_or_logs(
    c: QClient, hostile: tuple[QthumbProcess, MemoryWatchdog], clips: Path
):
    server = hostile[0]
    signed = ("http://127.0.0.1:9/x.mp4?X-Amz-Signature=SIGSECRET789"
              "&X-Amz-Credential=CREDSECRET012&size=1")  # fmt: skip
    failed_source = c.run({"source": signed, "format": [{"output": "thumbnail"}]})
    userinfo_source = c.run({"source": "http://user:PASSWORD678@127.0.0.1:9/x.mp4",
                             "format": [{"output": "thumbnail"}]})  # fmt: skip
    destinations_task = c.start({
        "source": str(clips / "testsrc.mp4"),
        "callback_url": "http://hook:CBSECRET345@127.0.0.1:9/hook",
        "format": [
            {"output": "thumbnail",
             "destination": {"url": "s3://AKIAUSERINFO:USERINFOSECRET@127.0.0.1:9/b/k.png"}},
            {"output": "thumbnail",
             "destination": {"url": "s3://127.0.0.1:9/b/k.png", "key": "FIELDKEY123",
                             "secret": "FIELDSECRET456"}},
        ],
    })  # fmt: skip
    destinations = c.wait(destinations_task)
    outside = c.run({"source": "/etc/passwd", "format": [{"output": "thumbnail"}]})
    assert failed_source["error_description"].startswith(
        "source http://127.0.0.1:9/x.mp4?X-Amz-Signature=***&X-Amz-Credential=***&size=1: "
    )
    assert userinfo_source["error_description"].startswith("source http://***@127.0.0.1:9/")
    assert destinations["images"][0]["error_description"].startswith(
        "destination s3://***@127.0.0.1:9/b/k.png: "
    )
    # the callback's own failure arrives later, as a warning
    with_warning = _wait_for_warning(c, destinations_task, "Callback delivery error")
    assert outside["error_description"] == (
        "source /etc/passwd: local files must be inside QTHUMB_LOCAL_SOURCE_DIRS"
    )
    everything = json.dumps([failed_source, userinfo_source, with_warning, outside])
    everything += server.logs()
    for secret in SECRETS:
        assert secret not in everything, secret
    assert str(clips) not in json.dumps(outside)


def _wait_for_warning(c: QClient, task: str, message: str) -> dict[str, Any]:
    def warned() -> dict[str, Any] | None:
        current = c.status(task)
        found = any(w["message"] == message for w in current.get("warnings") or [])
        return current if found else None

    return eventually(warned, 20, lambda: f"no {message!r} warning: {c.status(task)}")


# 8: a header that lies about the duration does not plan frames that are not there.
def test_a_source_shorter_than_its_header_ends_the_series_at_its_last_frame(
    c: QClient, hostile_media: Path
):
    status = c.run({"source": str(hostile_media / "liar.mkv"), "format": [
        {"output": "thumbnails", "interval": 1}]}, timeout=30)  # fmt: skip
    assert status["status"] == "completed", status["error_description"]
    frames = [i for i in status["images"] if i["type"] == "frame"]
    assert len(frames) == 5
    vtt = next(i for i in status["images"] if i["url"].endswith(".vtt"))
    assert c.fetch(vtt["url"]).text.rstrip().splitlines()[-2] == "00:00:04.000 --> 00:00:05.000"
    warning = next(w for w in status["warnings"] if w["tag"] == "image-0-0")
    assert warning["message"] == "source is shorter than its header says"
    assert "the header says 36000.000 s; its frames end at 5.000 s" in warning["details"]


# 9: bucket names are validated like keys.
@pytest.mark.parametrize(
    ("url", "bucket"),
    [("s3://127.0.0.1:9/../x.png", ".."), ("s3://127.0.0.1:9/%2E%2E/x.png", ".."),
     ("s3://127.0.0.1:9/./x.png", "."), ("s3://127.0.0.1:9/a..b/x.png", "a..b"),
     ("s3://127.0.0.1:9/b%00/x.png", "b\\\\x00")],
)  # fmt: skip
def test_bucket_names_are_validated(c: QClient, clips: Path, url: str, bucket: str):
    status = c.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail", "destination": {"url": url}}]})  # fmt: skip
    assert status["status"] == "error"
    assert f"the bucket '{bucket}' is not a bucket name" in status["error_description"], status


# 10: pixel bombs: a source's frames are checked against QTHUMB_MAX_SOURCE_PIXELS before any
# is decoded, and the decoder refuses a frame that grows past it mid-stream.
def test_a_source_of_huge_frames_fails_before_decoding(
    c: QClient, hostile: tuple[QthumbProcess, MemoryWatchdog], hostile_media: Path
):
    token = c.start({"source": str(hostile_media / "huge.mp4"), "format": [
        {"output": "thumbnail"}]})  # fmt: skip
    status = c.wait(token)
    assert status["status"] == "error"
    message = ("source frames are 4096x4096, 16777216 pixels; the limit is 10000000 "
               "(QTHUMB_MAX_SOURCE_PIXELS)")  # fmt: skip
    assert status["error_description"] == message
    answer = c.fetch(f"{hostile[0].base_url}/v1/thumbnail.jpg?task_token={token}&time=0")
    assert answer.status_code == 422 and answer.json()["message"] == message
    assert hostile[1].peak_mb < 500, hostile[1].peak_mb


def test_a_stream_that_grows_past_the_limit_is_refused_by_the_decoder(
    c: QClient, hostile_media: Path
):
    source = str(hostile_media / "grows.ts")  # 64x48 for 2 s, then 4096x4096
    for time in (0, 0.3):  # 0.9 s: MPEG-TS seeks by guessing a byte offset, into the big part
        ok = c.run({"source": source, "format": [{"output": "thumbnail", "time": time}]})
        assert ok["status"] == "completed", ok["error_description"]
        assert ok["images"][0]["width"] == 64
    grown = c.run({"source": source, "format": [{"output": "thumbnails", "interval": 1}]})
    assert grown["status"] == "error"
    assert grown["error_description"] == (
        "source frames are 4096x4096, 16777216 pixels; the limit is 10000000 "
        "(QTHUMB_MAX_SOURCE_PIXELS)"
    )
