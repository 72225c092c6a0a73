"""Thumbnails on demand (``GET /v1/thumbnail.{jpg,png,webp}``), on both backends: the exact
frame at a time in seconds or percent, sizes and fits, caching headers, sources fetched once
and kept within their byte budget, and clear errors (never a 500) for bad requests."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from app.files import LocalFiles
from app.settings import Settings
from tests.conftest import API_KEY, FPS, QthumbProcess
from tests.qclient import QClient
from tests.test_thumbnail import frame_index
from workers.on_demand import SourceCache


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
    ("task_token={task}&time=soon", 400, "time must be seconds"),
    ("task_token={task}&time=-1", 400, "out of range"),
    ("task_token={task}&time=150%25", 400, "out of range"),
    ("task_token={task}&time=nan", 400, "out of range"),
    ("task_token={task}&time=1e999", 400, "out of range"),
    ("task_token={task}&width=0", 400, "width must be"),
    ("task_token={task}&width=99999999", 400, "width must be"),
    ("task_token={task}&width=4097&height=4097", 400, "pixels"),
    ("task_token={task}&fit=pad", 400, "fit must be"),
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
    cache = SourceCache(tmp_path / "sources", one + 1, settings, LocalFiles(settings))
    first = cache.path("a" * 32, f"{source_server}/testsrc.mp4", lambda _: None)
    assert first.is_file()
    second = cache.path("b" * 32, f"{source_server}/testsrc.mp4", lambda _: None)
    assert second.is_file() and not first.exists()  # the least recently used went
    local = cache.path("c" * 32, str(clips / "index.mp4"), lambda _: None)
    assert local == clips / "index.mp4"  # the API's own allowed folders: read in place
