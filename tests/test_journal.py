"""The request journal (``GET /_qthumb/requests``, ``qthumb.requests()``), through the Python
SDK as a user's code calls qthumb: each call recorded with its method, fields (secrets
masked), task token, error and HTTP status, per key; faults recorded as what they answered;
reset clears it; a one-line count assertion."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import qencode3

from qthumb.app.testing import QthumbServer
from tests.conftest import API_KEY, serving

OTHER_KEY = "journal-other-key-0123"
make_client = qencode3.client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[QthumbServer]:
    with serving(tmp_path_factory.mktemp("journal"), clips, workers=1, QTHUMB_JOURNAL_SIZE="50",
                 QTHUMB_API_KEYS=f"{API_KEY},{OTHER_KEY}") as process:  # fmt: skip
        yield QthumbServer(process.base_url, API_KEY, clips, None)


def test_a_retry_after_error_8_is_there_to_assert_on(server: QthumbServer, clips: Path):
    server.reset()
    query = {"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail", "destination": {"url": "s3://h/b/k.png", "key": "AKID",
                                                "secret": "s3cr3t"}}]}  # fmt: skip
    client = make_client(API_KEY, api_url=server.url)
    with server.fault({"method": "start_encode2", "error": 8, "times": 1}):
        busy = client.create_task()
        busy.custom_start({"query": query})
        assert busy.error  # the first answer: error 8
        task = client.create_task()  # the user's code tries again, with a new task
        task.custom_start({"query": query})
        assert not task.error, task.message
    server.assert_called("start_encode2", 2)
    first, second = server.requests("start_encode2")
    assert (first["error"], second["error"]) == (8, 0)
    assert first["http_status"] == second["http_status"] == 200
    assert (first["task_token"], second["task_token"]) == (busy.task_token, task.task_token)
    destination = second["fields"]["query"]["query"]["format"][0]["destination"]
    assert destination == {"url": "s3://h/b/k.png", "key": "***", "secret": "***"}
    [login] = server.requests("access_token")
    assert login["fields"]["api_key"] == "***" and login["error"] == 0
    assert server.requests("create_task")[0]["fields"]["token"] == "***"
    task.status()
    [poll] = server.requests("status", task_token=task.task_token)
    assert poll["error"] == 0
    assert server.requests(task_token="f" * 32) == []


def test_faults_are_recorded_as_what_they_answered(server: QthumbServer):
    server.reset()
    with server.fault({"method": "access_token", "http_status": 503, "times": 1},
                      {"method": "access_token", "drop": True, "times": 1}):  # fmt: skip
        for _ in range(3):
            with contextlib.suppress(httpx.HTTPError):  # the dropped one
                httpx.post(f"{server.url}/v1/access_token", data={"api_key": API_KEY}, timeout=10)
    statuses = [r["http_status"] for r in server.requests("access_token")]
    assert sorted(statuses, key=str) == sorted([503, None, 200], key=str), statuses


def test_each_key_sees_its_own_and_reset_clears_it(server: QthumbServer):
    server.reset()
    httpx.post(f"{server.url}/v1/access_token", data={"api_key": OTHER_KEY}, timeout=10)
    httpx.post(f"{server.url}/v1/access_token", data={"api_key": "wrong-key-0123456789"},
               timeout=10)  # fmt: skip
    assert server.requests() == []  # the other key's call, and a wrong key's: not this key's
    other = QthumbServer(server.url, OTHER_KEY, server.media_dir, None)
    assert len(other.requests("access_token")) == 1
    other.reset()
    assert other.requests() == []
    since = httpx.get(f"{server.url}/_qthumb/requests", params={"since": "soon"},
                      headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)  # fmt: skip
    assert since.status_code == 400
