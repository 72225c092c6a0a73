"""Every Qencode error code the four endpoints (and legacy start_encode) can give, over real
HTTP (docs/compatibility.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from qthumb.app.api.service import QencodeService
from qthumb.app.errors import TokenNotFound
from qthumb.app.settings import Settings
from qthumb.app.tasks.backends import build
from tests.qclient import QClient

GOOD_QUERY = json.dumps({"query": {"source": "/x.mp4", "format": [{"output": "thumbnail"}]}})


def err(client: QClient, method: str, data: dict[str, str]) -> tuple[int, str]:
    reply = client.post(method, data)
    return reply["error"], reply.get("message", "")


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        ({}, 14, "api_key field is required"),
        ({"api_key": "short"}, 2, "Bad api_key"),
        ({"api_key": "has spaces in it!!"}, 2, "Bad api_key"),
        ({"api_key": "0123456789abcdef-unknown"}, 3, "api_key not found"),
    ],
)
def test_access_token_errors(client: QClient, data: dict[str, str], code: int, message: str):
    assert err(client, "access_token", data) == (code, message)


def test_access_token_reply_shape(client: QClient):
    reply = client.post("access_token", {"api_key": client.api_key})
    assert reply["error"] == 0
    assert len(reply["token"]) == 32 and int(reply["token"], 16) >= 0
    expire = time.strptime(reply["expire"], "%Y-%m-%dT%H:%M:%S")
    assert time.mktime(expire) > time.mktime(time.gmtime()) + 23 * 3600


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        ({}, 14, "token field is required"),
        ({"token": "xyz"}, 4, "Bad token"),
        ({"token": "0" * 32}, 5, "Token not found"),
    ],
)
def test_create_task_errors(client: QClient, data: dict[str, str], code: int, message: str):
    assert err(client, "create_task", data) == (code, message)


def test_create_task_reply_has_upload_url(client: QClient, qthumb):
    reply = client.post("create_task", {"token": client.token()})
    assert reply["error"] == 0
    assert reply["upload_url"] == f"{qthumb.base_url}/v1/upload_file"
    assert len(reply["task_token"]) == 32


def test_expired_session_token_is_not_found(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, api_keys=["0123456789abcdef"], session_token_ttl=10)
    now = [1000.0]
    backends = build(settings)
    service = QencodeService(
        settings,
        backends.store,
        backends.queue,
        settings.api_keys,
        backends.outbox,
        clock=lambda: now[0],
    )
    token = service.access_token("0123456789abcdef")["token"]
    assert service.create_task(token)["error"] == 0
    now[0] += 11
    with pytest.raises(TokenNotFound, match=r"^Token not found$"):
        service.create_task(token)


def test_start_encode2_errors(client: QClient):
    task = client.new_task()
    cases = [
        ({"query": GOOD_QUERY}, 14, "task_token field is required"),
        ({"task_token": "nope", "query": GOOD_QUERY}, 4, "Bad task_token"),
        ({"task_token": "f" * 32, "query": GOOD_QUERY}, 5, "Token not found"),
        ({"task_token": task}, 14, "query field is required"),
        ({"task_token": task, "query": GOOD_QUERY, "payload": "x" * 1001}, 9,
         "payload is too long (1000 characters at most)"),
        ({"task_token": task, "query": "{not json"}, 1,
         "query is not valid JSON: Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1)"),
        ({"task_token": task, "query": "[1, 2]"}, 1, "query must be a JSON object"),
        ({"task_token": task, "query": '{"query": {"source": "/x.mp4"}}'}, 14,
         "query.format field is required"),
        ({"task_token": task, "query": '{"query": {"format": [{"output": "thumbnail"}]}}'}, 14,
         "query.source field is required"),
        ({"task_token": task, "query": '{"source": "/x", "format": [{"output": "thumbnail"}]}'},
         19, "query field is required"),  # not wrapped, as Qencode answers it
        ({"task_token": task,
          "query": '{"query": {"source": "/x", "format": [{"output": "avi"}]}}'}, 1,
         "query.format[0].output: unknown output 'avi'"),
        ({"task_token": task, "query":
          '{"query": {"source": "/x", "format": [{"output": "thumbnail", "time": 101}]}}'}, 1,
         "query.format[0].time must be a fraction 0-1 or a percent 1-100, got 101"),
    ]  # fmt: skip
    for data, code, message in cases:
        assert err(client, "start_encode2", data) == (code, message), data
    # A bad query leaves the task startable; the second start is refused (docs/compatibility.md).
    assert client.post("start_encode2", {"task_token": task, "query": GOOD_QUERY})["error"] == 0
    assert err(client, "start_encode2", {"task_token": task, "query": GOOD_QUERY}) == (
        1,
        "task already started",
    )


def test_start_encode_has_no_profiles(client: QClient):
    code, message = err(client, "start_encode", {"task_token": client.new_task(), "profiles": "a"})
    assert code == 12
    assert message.startswith("Profile not found: qthumb has no encoding profiles")


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        ({}, 14, "task_tokens field is required"),
        ({"task_tokens": "abc"}, 13, "Bad task_tokens: 'abc' is not a task token"),
        ({"task_tokens": "[not json"}, 13, "Bad task_tokens: not a JSON list"),
    ],
)
def test_status_errors(client: QClient, data: dict[str, str], code: int, message: str):
    assert err(client, "status", data) == (code, message)


def test_status_token_forms(client: QClient, qthumb):
    a, b = client.new_task(), client.new_task()
    unknown = "e" * 32
    for data in (
        {"task_tokens": f"{a},{b},{unknown}"},
        {"task_tokens": json.dumps([a, b, unknown])},
        [("task_tokens[]", a), ("task_tokens[]", b), ("task_tokens[]", unknown)],
    ):
        reply = client.post("status", data)
        assert reply["error"] == 0
        assert set(reply["statuses"]) == {a, b, unknown}
        assert reply["statuses"][unknown] is None  # docs/compatibility.md
        entry = reply["statuses"][a]
        assert entry["status"] == "created" and entry["error"] == 0
        assert entry["status_url"] == f"{qthumb.base_url}/v1/status"
        for key in ("images", "videos", "audios", "texts", "warnings"):
            assert entry[key] == []


def test_double_slash_paths_and_http_200(client: QClient):
    base = client.base_url
    response = client.http.post(f"{base}//v1/access_token", data={"api_key": client.api_key})
    assert response.status_code == 200 and response.json()["error"] == 0
    response = client.http.post(f"{client.base_url}//v1/create_task", data={"token": "bad"})
    assert response.status_code == 200 and response.json()["error"] == 4
    # an unknown method is a Qencode error at once (SDKs retry any non-2xx); elsewhere, 404
    unknown = client.http.post("/v1/no_such_method")
    assert unknown.status_code == 200 and unknown.json()["error"] == 1
    assert client.http.post("/no_such_path").status_code == 404
