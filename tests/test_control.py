"""The mock's controls (``/_qthumb/``, ``QTHUMB_CONTROL=1``): faults on API methods seen
through the official Python SDK and plain HTTP, faults on tasks and callbacks, faults a query
carries, and a reset that removes one key's state and nothing of another's."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import qencode3

from qthumb.app.process.asgi import create_app
from qthumb.app.settings import Settings
from tests.conftest import API_KEY, OTHER_KEY, QthumbProcess, eventually, serve_in_thread, serving
from tests.qclient import QClient
from tests.test_callbacks import Receiver, receiver  # noqa: F401  (fixture)

make_client = qencode3.client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[QthumbProcess]:
    with serving(tmp_path_factory.mktemp("control"), clips,
                 QTHUMB_API_KEYS=f"{API_KEY},{OTHER_KEY}") as s:  # fmt: skip
        yield s


@pytest.fixture()
def control(server: QthumbProcess) -> Iterator[httpx.Client]:
    """The control API with the test key; every rule is cleared after the test."""
    with httpx.Client(base_url=f"{server.base_url}/_qthumb",
                      headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as c:  # fmt: skip
        yield c
        c.delete("/faults")


def fault(control: httpx.Client, *rules: dict[str, Any]) -> list[int]:
    answer = control.post("/faults", json=list(rules))
    assert answer.status_code == 200, answer.text
    ids: list[int] = answer.json()["ids"]
    return ids


def query(clips: Path, **extra: Any) -> dict[str, Any]:
    fmt = {"output": "thumbnail", "time": 0.5, "width": 96, **extra}
    return {"source": str(clips / "testsrc.mp4"), "format": [fmt]}


def test_off_unless_asked_and_only_with_a_key(tmp_path: Path, server: QthumbProcess):
    app = create_app(Settings(data_dir=tmp_path, api_keys=[API_KEY], control=False))
    with serve_in_thread(app) as port:
        answer = httpx.get(f"http://127.0.0.1:{port}/_qthumb/faults",
                           headers={"Authorization": f"Bearer {API_KEY}"})  # fmt: skip
        assert answer.status_code == 404
    url = f"{server.base_url}/_qthumb/faults"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, params={"api_key": "wrong-key-0123456789"}).status_code == 401
    assert httpx.get(url, params={"api_key": API_KEY}).json() == {"error": 0, "faults": []}
    bad = httpx.post(url, params={"api_key": API_KEY}, json=[{"method": "status"}])
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("rule 0: a method rule needs one of error")


def test_a_method_answers_the_error_asked_for_through_the_sdk(
    server: QthumbProcess, control: httpx.Client, clips: Path
):
    fault(control, {"method": "start_encode2", "error": 8, "message": "too many tasks",
                    "times": 1})  # fmt: skip
    client = make_client(API_KEY, api_url=server.base_url)
    task = client.create_task()
    task.custom_start({"query": query(clips)})
    assert task.error == 8 and task.message == "too many tasks"  # what the user's code sees
    again = client.create_task()
    again.custom_start({"query": query(clips)})  # times: 1, so the real answer now
    assert not again.error, again.message
    [rule] = control.get("/faults").json()["faults"]
    assert rule["fired"] == 1 and rule["times"] == 1 and rule["error"] == 8


def test_http_status_delay_and_drop(server: QthumbProcess, control: httpx.Client):
    fault(control, {"method": "access_token", "http_status": 503, "times": 1},
          {"method": "create_task", "drop": True, "times": 1})  # fmt: skip
    with httpx.Client(base_url=f"{server.base_url}/v1", timeout=30) as api:
        refused = api.post("/access_token", data={"api_key": API_KEY})
        assert refused.status_code == 503
        token = api.post("/access_token", data={"api_key": API_KEY}).json()["token"]
        with pytest.raises(httpx.RemoteProtocolError):
            api.post("/create_task", data={"token": token})
        fault(control, {"method": "create_task", "delay": 1.0, "times": 1})
        started = time.monotonic()
        late = api.post("/create_task", data={"token": token}).json()
        assert late["error"] == 0 and time.monotonic() - started >= 1.0
    other = httpx.post(f"{server.base_url}/v1/access_token", data={"api_key": OTHER_KEY})
    assert other.json()["error"] == 0  # another key's requests never meet these rules


def test_tasks_fail_hold_and_lose_a_format_as_asked(
    server: QthumbProcess, control: httpx.Client, clips: Path
):
    fault(control,
          {"task": {"user_tag": "boom"}, "fail_at": "downloading",
           "error_description": "origin said no"},
          {"task": {"payload": "slow"}, "hold": {"encoding": 2}},
          {"task": {"payload": "half"}, "fail_format": 1})  # fmt: skip
    with QClient(server.base_url, API_KEY) as c:
        boom = c.run(query(clips, user_tag="a-boom-tag"))
        assert boom["status"] == "error" and boom["error_description"] == "origin said no"
        fine = c.run(query(clips, user_tag="fine"))
        assert fine["status"] == "completed"
        slow = c.start(query(clips), payload="slow please")
        seen, started = set(), time.monotonic()

        def ended() -> dict[str, Any] | None:
            status = c.status(slow)
            seen.add(status["status"])
            return status if status["status"] in ("completed", "error") else None

        status = eventually(ended, 30, every=0.1)
        assert "encoding" in seen and time.monotonic() - started >= 2.0
        assert status["status"] == "completed"
        two = query(clips)
        # a format failed by a fault is a real failure: it fails the task unless soft
        two["format"].append({"output": "thumbnail", "time": 0.2, "width": 64})
        whole = c.wait(c.start(two, payload="half"))
        assert whole["status"] == "error"
        assert whole["error_description"] == "format 1 (thumbnail): failed (a fault asked for)"
        two["format"][1]["allow_soft_fail"] = 1
        half = c.wait(c.start(two, payload="half"))
        assert half["status"] == "completed"
        failed = [i for i in half["images"] if i["url"] is None]
        assert len(half["images"]) == 2 and [i["tag"] for i in failed] == ["image-1-0"]
        assert any("failed (a fault asked for)" in w["details"] for w in half["warnings"])
    fired = {r["id"]: r["fired"] for r in control.get("/faults").json()["faults"]}
    assert sorted(fired.values()) == [1, 1, 2]


def test_a_query_carries_its_own_faults(server: QthumbProcess, clips: Path):
    with QClient(server.base_url, API_KEY) as c:
        q = {**query(clips), "qthumb_faults": [{"task": {}, "fail_at": "encoding"}]}
        status = c.run(q)
        assert status["status"] == "error"
        assert status["error_description"] == "failed while encoding (a fault asked for)"
        bad = c.post("start_encode2", {"task_token": c.new_task(), "query": json.dumps(
            {"query": {**query(clips), "qthumb_faults": [{"task": {}}]}})})  # fmt: skip
        assert bad["error"] == 1
        assert bad["message"].startswith("query.qthumb_faults[0]: a task rule needs fail_at")


def test_callbacks_dropped_doubled_and_delayed(
    server: QthumbProcess,
    control: httpx.Client,
    clips: Path,
    receiver: Receiver,  # noqa: F811
):
    fault(control, {"callback": "queued", "drop": True, "times": 1},
          {"callback": "saved", "duplicate": True, "times": 1})  # fmt: skip
    with QClient(server.base_url, API_KEY) as c:
        first = c.start({**query(clips), "callback_url": receiver.url})
        assert c.wait(first)["status"] == "completed"
        receiver.calls_for(first, 2)
        # a task's callbacks arrive in the order they were queued: had "queued" been sent, it
        # would have come before the first "saved"; so no wait can show more than this does
        assert receiver.events(first) == ["saved", "saved"]  # queued dropped, saved twice
        fault(control, {"callback": "queued", "delay": 2, "times": 1})
        started = time.monotonic()
        second = c.start({**query(clips), "callback_url": receiver.url})
        assert c.wait(second)["status"] == "completed"
        receiver.calls_for(second, 2, timeout=10)
        # queued came first, 2 s late, and saved (due long before) waited behind it
        assert receiver.events(second) == ["queued", "saved"]
        assert receiver.first_at(second) - started >= 1.9


def test_reset_removes_one_keys_state_and_nothing_else(
    server: QthumbProcess, control: httpx.Client, clips: Path
):
    with QClient(server.base_url, API_KEY) as mine, QClient(server.base_url, OTHER_KEY) as theirs:
        done = mine.start(query(clips))
        image = mine.wait(done)["images"][0]["url"]
        fault(control, {"task": {"user_tag": "held"}, "hold": {"encoding": 60}})
        held = mine.start(query(clips, user_tag="held"))
        eventually(lambda: mine.status(held)["status"] == "encoding", 30)
        kept = theirs.start(query(clips))
        assert theirs.wait(kept)["status"] == "completed"
        session = mine.post("access_token", {"api_key": API_KEY})["token"]
        assert mine.fetch(image).status_code == 200
        started = time.monotonic()
        report = control.post("/reset").json()
        assert report["error"] == 0 and report["keys"] == 1, report
        assert report["tasks"] >= 2 and report["running_stopped"] == 1, report
        assert report["still_running"] == 0 and report["results"] >= 1, report
        assert time.monotonic() - started < 30  # the held task stopped; no 60 s wait
        answer = mine.post("status", {"task_tokens": f"{done},{held}"})
        assert answer["statuses"] == {done: None, held: None}
        assert mine.fetch(image).status_code == 404
        assert mine.post("create_task", {"token": session})["error"] != 0  # its tokens too
        assert theirs.status(kept)["status"] == "completed"  # nothing of another key


def test_time_scale_makes_expiry_and_retries_quick(
    tmp_path: Path,
    clips: Path,
    receiver: Receiver,  # noqa: F811
):
    """QTHUMB_TIME_SCALE=0.0005: an hour's session token lives 1.8 s, and a callback retried
    after 60 s and 120 s is retried after 30 and 60 ms."""
    fast = serving(tmp_path, clips, QTHUMB_TIME_SCALE="0.0005", QTHUMB_SESSION_TOKEN_TTL="3600",
                   QTHUMB_CALLBACK_BACKOFF="60", QTHUMB_CALLBACK_ATTEMPTS="3")  # fmt: skip
    with fast as server, QClient(server.base_url, API_KEY) as c:
        token = c.post("access_token", {"api_key": API_KEY})["token"]
        assert c.post("create_task", {"token": token})["error"] == 0

        def refused() -> dict[str, Any] | None:
            answer = c.post("create_task", {"token": token})
            return answer if answer["error"] != 0 else None

        eventually(refused, 10)  # expired within seconds, where an hour's token would not be
        receiver.fail_first = 2  # the first two tries of the first event fail
        task = c.start({**query(clips), "callback_url": receiver.url})
        assert c.wait(task)["status"] == "completed"
        calls = receiver.calls_for(task, 4, timeout=15)  # queued x3, then saved
        assert [call["event"] for call in calls] == ["queued"] * 3 + ["saved"]


NODE_FAULTS = """
const QencodeApiClient = require("qencode-api");
(async () => {
  const [endpoint, key, queryJson] = process.argv.slice(1);
  const client = await new QencodeApiClient({ key, endpoint });
  const out = {};
  const refused = await client.CreateTask();
  try { await refused.StartCustom(JSON.parse(queryJson)); out.started = true; }
  catch (e) { out.refused = e.message; }
  const task = await client.CreateTask();
  await task.StartCustom(JSON.parse(queryJson));
  for (let i = 0; i < 600; i++) {
    const status = await task.GetStatus();
    if (status && (status.status === "completed" || status.status === "error")) {
      out.status = status; break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_the_node_sdk_sees_the_faults(server: QthumbProcess, control: httpx.Client, clips: Path):
    """Qencode's Node SDK: the method's error as the exception it raises, the task's failure
    in the status it polls."""
    fault(control, {"method": "start_encode2", "error": 8, "message": "too many tasks",
                    "times": 1},
          {"task": {"user_tag": "node"}, "fail_at": "encoding",
           "error_description": "no"})  # fmt: skip
    js = Path(__file__).parent / "js"
    out = subprocess.run(
        ["node", "-e", NODE_FAULTS, server.base_url, API_KEY,
         json.dumps(query(clips, user_tag="node"))],
        cwd=js, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout.strip().splitlines()[-1])
    assert "too many tasks" in reply["refused"], reply
    assert reply["status"]["status"] == "error" and reply["status"]["error_description"] == "no"


def test_an_upload_meets_its_fault(server: QthumbProcess, control: httpx.Client):
    fault(control, {"method": "upload", "http_status": 507, "times": 1})
    with QClient(server.base_url, API_KEY) as c:
        task = c.new_task()
    headers = {"Tus-Resumable": "1.0.0", "Upload-Length": "10"}
    url = f"{server.base_url}/v1/upload_file/{task}"
    assert httpx.post(url, headers=headers).status_code == 507
    assert httpx.post(url, headers=headers).status_code == 201  # once only


def test_fields_qthumb_ignores_are_warned_of_and_refused_when_strict(
    server: QthumbProcess, clips: Path, tmp_path: Path
):
    q = query(clips)
    q["frobnicate"] = 1
    q["format"][0]["two_pass"] = 1
    with QClient(server.base_url, API_KEY) as c:
        status = c.run(q)
    assert status["status"] == "completed"
    warned = {(w["message"], w["tag"]) for w in status["warnings"]}
    assert warned == {("query.frobnicate ignored", "image-0-0"),
                      ("query.format[0].two_pass ignored", "image-0-0")}  # fmt: skip
    app = create_app(Settings(data_dir=tmp_path, api_keys=[API_KEY], strict=True))
    with serve_in_thread(app) as port, QClient(f"http://127.0.0.1:{port}", API_KEY) as strict:
        refused = strict.post("start_encode2", {"task_token": strict.new_task(),
                                                "query": json.dumps({"query": q})})  # fmt: skip
        assert refused["error"] == 1
        assert refused["message"] == (
            "query.frobnicate: qthumb does not act on this field (QTHUMB_STRICT=1)"
        )
        lenient = json.dumps({"query": query(clips, width="96")})  # a number as a string
        refused = strict.post("start_encode2", {"task_token": strict.new_task(),
                                                "query": lenient})  # fmt: skip
        assert refused["error"] == 1 and refused["message"] == (
            'query.format[0].width: the string "96" read as a number (QTHUMB_STRICT=1)'
        )
