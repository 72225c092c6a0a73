"""Direct uploads (tus 1.0) at upload_url/<task_token>: the Python SDK's uploader, resumable
uploads with tuspy, and uploads that belong to another task refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import qencode3
from qencode3 import tus_uploader
from tusclient import client as tus

from tests.conftest import API_KEY, QthumbProcess
from tests.qclient import ended
from tests.test_sdks import make_client
from tests.waiting import eventually

# tuspy 0.2 (the one qencode3's uploader works with) leaves the uploaded file open.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def wait(task: qencode3.task.Task) -> dict:  # type: ignore[name-defined]
    return eventually(lambda: ended(task.status()), 60, every=0.1)


def test_python_sdk_uploads_then_encodes_the_upload(qthumb: QthumbProcess, clips: Path):
    client = make_client(API_KEY, api_url=qthumb.base_url)
    task = client.create_task()
    result = tus_uploader.upload(
        file_path=str(clips / "index.mp4"), url=f"{task.upload_url}/{task.task_token}"
    )
    assert result.status == "Ok" and result.url.startswith("tus:")
    uid = result.url.split(":", 1)[1]
    assert len(uid) == 32
    task.custom_start({"query": {"source": result.url, "format": [
        {"output": "thumbnail", "time": 0.5}]}})  # fmt: skip
    status = wait(task)
    assert status["status"] == "completed", status
    assert status["images"][0]["time"] == 2.0
    assert status["source_size"] == (clips / "index.mp4").stat().st_size


def test_location_ends_with_the_uuid_and_uploads_resume(qthumb: QthumbProcess, clips: Path):
    client = make_client(API_KEY, api_url=qthumb.base_url)
    task = client.create_task()
    endpoint = f"{task.upload_url}/{task.task_token}"
    source = clips / "testsrc.mp4"
    metadata = {"filename": source.name, "filetype": "video/mp4"}
    first = tus.TusClient(endpoint).uploader(
        file_path=str(source), chunk_size=4096, metadata=metadata
    )
    first.upload_chunk()  # one chunk, then the "connection drops"
    assert first.url.startswith(f"{endpoint}/") and first.url.rsplit("/", 1)[1].isalnum()
    head = httpx.head(first.url, headers={"Tus-Resumable": "1.0.0"})
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "4096"
    resumed = tus.TusClient(endpoint).uploader(
        file_path=str(source), chunk_size=64 * 1024, url=first.url, metadata=metadata
    )
    assert resumed.offset == 4096  # asked the server with HEAD
    resumed.upload()
    task.custom_start({"query": {"source": "tus:" + first.url.rsplit("/", 1)[1],
                                 "format": [{"output": "thumbnail"}]}})  # fmt: skip
    assert wait(task)["status"] == "completed"


def test_uploads_of_another_task_are_refused(qthumb: QthumbProcess, clips: Path):
    client = make_client(API_KEY, api_url=qthumb.base_url)
    owner, other = client.create_task(), client.create_task()
    result = tus_uploader.upload(
        file_path=str(clips / "testsrc.mp4"), url=f"{owner.upload_url}/{owner.task_token}"
    )
    uid = result.url.split(":", 1)[1]
    # resuming it through the other task's URL
    head = httpx.head(f"{other.upload_url}/{other.task_token}/{uid}",
                      headers={"Tus-Resumable": "1.0.0"})  # fmt: skip
    assert head.status_code == 404
    # an unknown task token
    post = httpx.post(f"{owner.upload_url}/{'0' * 32}",
                      headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"})  # fmt: skip
    assert post.status_code == 404
    # using it as the other task's source
    other.custom_start({"query": {"source": result.url, "format": [{"output": "thumbnail"}]}})
    status = wait(other)
    assert status["status"] == "error"
    assert status["error_description"] == (
        f"source {result.url}: no upload with that uuid was made for this task"
    )
    # a started task takes no more uploads
    post = httpx.post(f"{other.upload_url}/{other.task_token}",
                      headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"})  # fmt: skip
    assert post.status_code == 409


def test_an_upload_length_no_upload_may_have_is_refused(qthumb: QthumbProcess):
    """tus creations with a negative, malformed or oversized ``Upload-Length`` are refused
    before an upload is recorded: no ``Location`` to PATCH into."""
    task = make_client(API_KEY, api_url=qthumb.base_url).create_task()
    url = f"{task.upload_url}/{task.task_token}"
    for length, code, words in (
        ("-5", 400, "whole number of bytes"),
        ("12abc", 400, "whole number of bytes"),
        ("1" + "0" * 15, 413, "(QTHUMB_MAX_SOURCE_BYTES)"),
        ("9" * 40, 400, "whole number of bytes"),
    ):
        post = httpx.post(url, headers={"Tus-Resumable": "1.0.0", "Upload-Length": length})
        assert post.status_code == code and words in post.text, (length, post.text)
        assert "location" not in post.headers
    post = httpx.post(url, headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"})
    assert post.status_code == 201 and post.headers["location"].startswith(url)


def test_a_frame_on_demand_leaves_the_upload_where_the_task_reads_it(
    qthumb: QthumbProcess, clips: Path
):
    """The on-demand source cache once moved an upload it read in place into its cache: a task
    page opened before the worker got to the task (the console's player asks for the source)
    made the task fail with "the upload is missing"."""
    client = make_client(API_KEY, api_url=qthumb.base_url)
    task = client.create_task()
    result = tus_uploader.upload(
        file_path=str(clips / "index.mp4"), url=f"{task.upload_url}/{task.task_token}"
    )
    uid = result.url.split(":", 1)[1]
    task.custom_start({"query": {"source": result.url, "format": [{"output": "metadata"}]}})
    assert wait(task)["status"] == "completed"
    in_place = qthumb.data_dir / "uploads" / uid
    was_there = in_place.is_file()  # the embedded backend; a bucket's uploads are downloaded
    url = f"{qthumb.base_url}/v1/thumbnail.jpg?task_token={task.task_token}&time=1"
    assert httpx.get(url, timeout=30).status_code == 200
    assert in_place.is_file() == was_there
    assert httpx.get(url.replace("time=1", "time=2"), timeout=30).status_code == 200
