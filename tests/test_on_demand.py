"""Thumbnails on demand (``GET /v1/thumbnail.{jpg,png,webp}``), on both backends: the exact
frame at a time in seconds or percent, sizes and fits, caching headers, sources fetched once
and kept within their byte budget, and clear errors (never a 500) for bad requests."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
from pathlib import Path

import httpx
import pytest
from PIL import Image

from qthumb.app.on_demand.asks import (
    Answer,
    Ask,
    Failed,
    FrameRequest,
    FrameRequestError,
    RenderedFrame,
    SourceAsk,
    StoryboardRequest,
)
from qthumb.app.on_demand.service import FrameServer, OnDemand, ResultCache
from qthumb.app.qencode.query import ImageFormat, ResizeMode
from qthumb.app.settings import Settings
from qthumb.app.storage.files import open_files
from qthumb.workers.on_demand.frame_server import LocalFrames
from qthumb.workers.on_demand.frames import SourceCache
from tests.conftest import API_KEY, FPS, QthumbProcess, eventually
from tests.qclient import QClient
from tests.test_thumbnail import frame_index


def started(client: QClient, source: str) -> str:
    token = client.start({"source": source, "format": [{"output": "metadata"}]})
    client.wait(token)
    return token


@pytest.fixture(scope="module")
def task(qthumb: QthumbProcess, clips: Path) -> str:
    with QClient(qthumb.base_url, API_KEY) as c:
        return started(c, str(clips / "index.mp4"))


def get(qthumb: QthumbProcess, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{qthumb.base_url}{path}", headers=headers, timeout=30)


@pytest.mark.parametrize(("time", "frame"), [("2.5", 62), ("0", 0), ("50%", 50), ("", 50),
                                              ("99.5", 99), ("100%", 99)])  # fmt: skip
def test_the_frame_at_the_time_asked(qthumb: QthumbProcess, task: str, time: str, frame: int):
    answer = get(qthumb, f"/v1/thumbnail.png?task_token={task}&time={time.replace('%', '%25')}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(answer.content)) as image:
        assert image.size == (64, 48)
        assert abs(frame_index(image) - frame) < 0.5
    assert abs(float(answer.headers["x-frame-time"]) - frame / FPS) < 1e-6


def test_cache_headers_and_a_repeat(qthumb: QthumbProcess, task: str):
    path = f"/v1/thumbnail.jpg?task_token={task}&time=1.3&width=32"
    first = get(qthumb, path)
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert "max-age" in first.headers["cache-control"]
    again = get(qthumb, path)
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    unchanged = get(qthumb, path, **{"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""


@pytest.mark.parametrize(("query", "size"), [
    ("width=32", (32, 24)), ("height=24", (32, 24)), ("width=40&height=40&fit=crop", (40, 40)),
    ("width=40&height=40", (40, 40)), ("", (64, 48)),
])  # fmt: skip
def test_sizes_and_fits(qthumb: QthumbProcess, task: str, query: str, size: tuple[int, int]):
    answer = get(qthumb, f"/v1/thumbnail.webp?task_token={task}&time=1&{query}")
    assert answer.status_code == 200, answer.text
    with Image.open(io.BytesIO(answer.content)) as image:
        assert image.format == "WEBP" and image.size == size


def test_a_url_source_is_fetched_once_and_kept(client: QClient, qthumb: QthumbProcess,
                                               source_server: str):  # fmt: skip
    token = started(client, f"{source_server}/testsrc.mp4")
    for t in ("1", "2", "3"):
        assert get(qthumb, f"/v1/thumbnail.jpg?task_token={token}&time={t}").status_code == 200
    cached = qthumb.data_dir / "cache" / "sources" / token
    assert cached.is_file()


@pytest.mark.parametrize(("query", "status", "words"), [
    ("", 400, "task_token is required"),
    ("task_token=xyz", 400, "Bad task_token"),
    ("task_token=" + "0" * 32, 404, "Token not found"),
    ("task_token={task}&time=soon", 400, "time must be a number of seconds"),
    ("task_token={task}&time=-1", 400, "time must be a number of seconds"),
    ("task_token={task}&time=150%25", 400, "or a percent from 0 to 100"),
    ("task_token={task}&time=nan", 400, "time must be"),
    ("task_token={task}&time=1e999", 400, "time must be"),
    # numbers are ASCII digits only: Arabic-Indic, superscript, underscores, blanks
    ("task_token={task}&time=%D9%A1%D9%A2", 400, "time must be"),
    ("task_token={task}&width=%C2%B2", 400, "width must be a whole number"),
    ("task_token={task}&width=1_0", 400, "width must be a whole number"),
    ("task_token={task}&width=%2010", 400, "width must be a whole number"),
    ("task_token={task}&width=0", 400, "width must be"),
    ("task_token={task}&width=99999999", 400, "width must be"),
    ("task_token={task}&width=4097&height=4097", 400, "pixels"),
    ("task_token={task}&fit=letterbox", 400, "fit must be"),
    ("task_token={task}&fit=pad&pad_color=nope", 400, "pad_color must be a colour"),
    ("task_token={task}&rotate=45", 400, "rotate must be"),
    ("task_token={task}&placeholder=jpeg", 400, "placeholder must be blurhash or thumbhash"),
])  # fmt: skip
def test_bad_requests_get_clear_errors(
    qthumb: QthumbProcess, task: str, query: str, status: int, words: str
):
    answer = get(qthumb, "/v1/thumbnail.png?" + query.format(task=task))
    assert answer.status_code == status, answer.headers
    body = answer.json()
    assert body["error"] > 0 and words in body["message"]


def test_a_task_not_started_and_a_wrong_suffix(client: QClient, qthumb: QthumbProcess, task: str):
    fresh = client.new_task()
    answer = get(qthumb, f"/v1/thumbnail.png?task_token={fresh}")
    assert answer.status_code == 409 and "not been started" in answer.json()["message"]
    assert get(qthumb, f"/v1/thumbnail.gif?task_token={task}").status_code == 404


def test_the_source_cache_keeps_within_its_bytes(tmp_path: Path, clips: Path, source_server: str):
    settings = Settings(data_dir=tmp_path, allowed_networks=["127.0.0.0/8"],
                        local_source_dirs=[str(clips)])  # fmt: skip
    one = (clips / "testsrc.mp4").stat().st_size
    cache = SourceCache(tmp_path / "sources", one + 1, settings, open_files(settings))
    first = cache.path("a" * 32, f"{source_server}/testsrc.mp4", lambda _: None, API_KEY)
    assert first.is_file()
    second = cache.path("b" * 32, f"{source_server}/testsrc.mp4", lambda _: None, API_KEY)
    assert second.is_file() and not first.exists()  # the least recently used went
    local = cache.path("c" * 32, str(clips / "index.mp4"), lambda _: None, API_KEY)
    assert local == clips / "index.mp4"  # the API's own allowed folders: read in place


def _children(pid: int, module: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and module.encode() in argv:
            found.append(int(entry.name))
    return found


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_frames_are_made_outside_the_api_process(qthumb: QthumbProcess, task: str):
    """The API process never loads the decoder: its frame server, a child, does."""
    assert get(qthumb, f"/v1/thumbnail.jpg?task_token={task}&time=0.7").status_code == 200
    api = qthumb.procs[0].pid
    servers = _children(api, "qthumb.workers.on_demand.frame_server")
    assert len(servers) == 1
    assert "libavcodec" not in _maps(api) and "PIL/_imaging" not in _maps(api)
    assert "libavcodec" in _maps(servers[0])


def test_a_crashed_frame_server_is_started_again(qthumb: QthumbProcess, task: str):
    """A decoder that crashes (here: SIGSEGV sent to it) costs the API nothing: the next
    request starts a new frame server and gets its frame."""
    assert get(qthumb, f"/v1/thumbnail.png?task_token={task}&time=0.9").status_code == 200
    api = qthumb.procs[0].pid
    (old,) = _children(api, "qthumb.workers.on_demand.frame_server")
    os.kill(old, signal.SIGSEGV)
    answer = get(qthumb, f"/v1/thumbnail.png?task_token={task}&time=1.14")
    assert answer.status_code == 200, answer.text
    with Image.open(io.BytesIO(answer.content)) as image:
        assert abs(frame_index(image) - 28) < 0.5  # 1.14 s: frame 28 (1.12-1.16 s)
    assert _children(api, "qthumb.workers.on_demand.frame_server") not in ([], [old])
    assert get(qthumb, "/readyz").status_code == 200


@dataclass
class Stalling:
    url: str
    held: list[socket.socket]  # the connections it accepted


@pytest.fixture()
def stalling_source() -> Iterator[Stalling]:
    """An origin that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    yield Stalling(f"http://127.0.0.1:{listener.getsockname()[1]}/slow.mp4", held)
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_request_in_flight_when_its_server_dies_gets_a_422(
    tmp_path: Path, stalling_source: Stalling
):
    settings = Settings(data_dir=tmp_path, allowed_networks=["127.0.0.0/8"],
                        source_read_timeout=60)  # fmt: skip
    server = FrameServer(settings)
    on_demand = OnDemand(settings, server)
    request = FrameRequest(1.0, None, None, None, ResizeMode.SCALE, ImageFormat.JPG)
    outcome: list[BaseException | object] = []

    def ask() -> None:
        try:
            outcome.append(
                on_demand.render("t" * 32, stalling_source.url, request, lambda _: None, API_KEY)
            )
        except FrameRequestError as exc:
            outcome.append(exc)

    try:
        asking = threading.Thread(target=ask)
        asking.start()
        pid = eventually(lambda: server.pid, 30, lambda: "the request started no frame server")
        # the request is in the server, waiting on the origin
        eventually(lambda: stalling_source.held, 30, lambda: "the source was never asked for")
        os.kill(pid, signal.SIGKILL)
        asking.join(timeout=30)
        (error,) = outcome
        assert isinstance(error, FrameRequestError) and error.http_status == 422
        assert "the decoder stopped (signal 9)" in error.message
    finally:
        on_demand.close()


def test_the_frame_server_ends_with_its_api_process(tmp_path: Path):
    """Even an API process killed outright leaves no frame server behind."""
    script = (
        "import os, sys, time\n"
        "from qthumb.app.on_demand.service import FrameServer\n"
        "from qthumb.app.settings import Settings\n"
        f"server = FrameServer(Settings(data_dir={str(tmp_path)!r}))\n"
        "print(server.start(), flush=True)\n"
        "time.sleep(60)\n"
    )
    api = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert api.stdout is not None
        child = int(api.stdout.readline())
        assert Path(f"/proc/{child}").exists()
    finally:
        api.kill()
        api.wait()
        assert api.stdout is not None
        api.stdout.close()
    eventually(lambda: not Path(f"/proc/{child}").exists(), 5, lambda: "the frame server lives")


def test_only_the_api_gets_into_its_frame_server(tmp_path: Path):
    server = FrameServer(Settings(data_dir=tmp_path))
    try:
        server.start()
        with pytest.raises(AuthenticationError):
            Client(server.address, family="AF_UNIX", authkey=b"not the key")
        assert isinstance(
            server.answer(SourceAsk("t" * 32, "/nonexistent.mp4", {}, API_KEY)), Failed
        )
    finally:
        server.close()


def test_the_same_answers_in_process(tmp_path: Path, clips: Path):
    """``LocalFrames`` is the frame server's code behind the same protocol, in this process:
    the exact frame, the cache in front of it, and a refusal as a typed ``Failed``."""
    settings = Settings(data_dir=tmp_path, local_source_dirs=[str(clips)])
    on_demand = OnDemand(settings, LocalFrames(settings))
    request = FrameRequest(2.0, None, None, None, ResizeMode.SCALE, ImageFormat.PNG)
    frame = on_demand.render("t" * 32, str(clips / "index.mp4"), request, lambda _: None, API_KEY)
    with Image.open(io.BytesIO(frame.data)) as picture:
        assert abs(frame_index(picture) - 2 * FPS) < 0.5
    assert on_demand.cached("t" * 32, request) == frame
    with pytest.raises(FrameRequestError) as refused:
        on_demand.source_path("t" * 32, "/nonexistent.mp4", lambda _: None, API_KEY)
    assert refused.value.http_status >= 400


class CountingFrames(LocalFrames):
    """``LocalFrames`` that counts what it is asked to build."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.built = 0

    def answer(self, ask: Ask) -> Answer:
        self.built += 1
        return super().answer(ask)


def test_storyboards_are_not_rebuilt_for_what_they_cannot_answer(tmp_path: Path, clips: Path):
    """A sheet past the last is refused from the storyboard's remembered layout, without a
    build; a storyboard too large for the result cache is refused, and again without a
    build (kept, its sheets would push each other out and each would build it all again)."""
    settings = Settings(data_dir=tmp_path, local_source_dirs=[str(clips)])
    frames = CountingFrames(settings)
    on_demand = OnDemand(settings, frames)
    source, asked = str(clips / "index.mp4"), StoryboardRequest(64, 2, 1.0, ImageFormat.JPG)
    first = on_demand.render("t" * 32, source, asked, lambda _: None, API_KEY, "sheet0")
    assert first.data[:3] == b"\xff\xd8\xff" and frames.built == 1
    for _ in range(3):
        with pytest.raises(FrameRequestError) as past:
            on_demand.render("t" * 32, source, asked, lambda _: None, API_KEY, "sheet99")
        assert past.value.http_status == 404 and "sheets" in past.value.message
    assert frames.built == 1
    small = Settings(data_dir=tmp_path, local_source_dirs=[str(clips)],
                     on_demand_result_cache_bytes=4000)  # fmt: skip
    frames = CountingFrames(small)
    on_demand = OnDemand(small, frames)
    for piece in ("vtt", "sheet0", "sheet1"):
        with pytest.raises(FrameRequestError) as large:
            on_demand.render("t" * 32, source, asked, lambda _: None, API_KEY, piece)
        assert large.value.http_status == 413
        assert "QTHUMB_ON_DEMAND_RESULT_CACHE_BYTES" in large.value.message
    assert frames.built == 1


def test_the_result_cache_drops_the_least_recently_used_past_its_bytes():
    """Encoded frames are kept within the cache's bytes: the least recently *used* goes first
    (a read counts as a use), and an answer larger than the whole cache is not kept at all."""
    cache = ResultCache(limit=300)
    frame = {name: RenderedFrame.of(bytes([n]) * 100, "image/jpeg")
             for n, name in enumerate("abcd")}  # fmt: skip
    for name in "abc":
        cache.put(name, frame[name])
    assert cache.get("a") == frame["a"]  # used: now the most recent
    cache.put("d", frame["d"])  # 400 bytes: one must go, the least recently used (b)
    assert [k for k in "abcd" if cache.get(k) is not None] == ["a", "c", "d"]
    assert cache.size == 300
    cache.put("big", RenderedFrame.of(b"x" * 301, "image/png"))
    assert cache.get("big") is None and cache.size == 300
    cache.put("c", RenderedFrame.of(b"y" * 50, "image/jpeg"))  # replaced: its bytes counted once
    assert cache.size == 250 and cache.get("c") is not None
