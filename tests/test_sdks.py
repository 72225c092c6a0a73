"""Qencode's official SDKs, unchanged but for the base URL, against ``qthumb serve``: the Python
``qencode3`` (PyPI) in this process and the Node ``qencode-api`` (npm) through ``node``."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import qencode3

from tests.conftest import API_KEY, QthumbProcess, serving

# qencode3.client is a function until the SDK imports its own ``qencode3.client`` module, which
# then replaces it: a second ``qencode3.client(...)`` in one process fails (an SDK quirk).
make_client = qencode3.client

JS_DIR = Path(__file__).parent / "js"


def test_python_sdk_custom_start_and_status(qthumb: QthumbProcess, clips: Path):
    client = make_client(API_KEY, api_url=qthumb.base_url)
    assert not client.error, client.message
    task = client.create_task()
    assert not task.error and len(task.task_token) == 32
    assert task.upload_url == f"{qthumb.base_url}/v1/upload_file"
    # custom_start sends what it is given: the caller wraps the query (§7.1)
    task.custom_start({"query": {"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail", "time": 0.5, "width": 320},
        {"output": "thumbnails", "interval": 2, "sprite": 1, "columns": 3, "width": 160},
    ]}}, payload="py-payload")  # fmt: skip
    assert not task.error, task.message
    assert task.status_url == f"{qthumb.base_url}/v1/status"
    deadline = time.monotonic() + 60
    while (status := task.status())["status"] not in ("completed", "error"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["status"] == "completed" and status["payload"] == "py-payload"
    assert {i["type"] for i in status["images"]} == {"thumbnail", "sprite", "vtt"}
    # the query bare, not wrapped: what Qencode answers, error 19
    bare = client.create_task()
    bare.custom_start({"source": str(clips / "testsrc.mp4"), "format": [{"output": "thumbnail"}]})
    assert (bare.error, bare.message) == (19, "query field is required")


def test_python_sdk_reports_api_errors(qthumb: QthumbProcess):
    client = make_client("0123456789abcdef-unknown", api_url=qthumb.base_url)
    assert client.error == 3 and client.message == "api_key not found"


def test_python_sdk_status_of_unknown_task_falls_back_and_returns_none(qthumb: QthumbProcess):
    client = make_client(API_KEY, api_url=qthumb.base_url)
    task = client.create_task()
    task.task_token = "d" * 32
    task.status_url = f"{qthumb.base_url}/v1/status"
    assert task.status() is None


def test_node_sdk_custom_start_and_status(qthumb: QthumbProcess, clips: Path):
    query = {"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnails", "interval": 2, "sprite": 1, "columns": 5, "width": 160},
    ]}  # fmt: skip
    out = subprocess.run(
        ["node", str(JS_DIR / "sdk-run.js"), qthumb.base_url, API_KEY, json.dumps(query)],
        capture_output=True, text=True, timeout=120, cwd=JS_DIR, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    status = result["status"]
    assert status["status"] == "completed" and status["payload"] == "node-payload"
    assert result["upload_url"] == f"{qthumb.base_url}/v1/upload_file"
    [sprite] = [i for i in status["images"] if i["type"] == "sprite"]
    assert (sprite["width"], sprite["height"]) == (3 * 160, 90)  # 3 tiles: 3 columns


NODE_TEMPLATES = """
const QencodeApiClient = require("qencode-api");
(async () => {
  const client = await new QencodeApiClient({ key: process.argv[1], endpoint: process.argv[2] });
  const started = Date.now();
  try { await client.getTemplates(); console.log(JSON.stringify({ ok: true })); }
  catch (e) { console.log(JSON.stringify({ ms: Date.now() - started, message: e.message })); }
})();
"""


def test_node_get_templates_fails_at_once(qthumb: QthumbProcess):
    """An endpoint qthumb does not serve answers a Qencode error (HTTP 200, error 1), so the
    Node SDK fails at once instead of retrying 20 times, 3 s apart."""
    js = Path(__file__).parent / "js"
    out = subprocess.run(["node", "-e", NODE_TEMPLATES, API_KEY, qthumb.base_url], cwd=js,
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    reply = json.loads(out.stdout.strip().splitlines()[-1])
    assert reply["ms"] < 1000, reply
    assert reply["message"].startswith("unknown method 'request_templates': qthumb serves")


def test_unknown_paths_and_verbs_under_v1_are_qencode_errors(client: Any, qthumb: QthumbProcess):
    with httpx.Client(base_url=qthumb.base_url) as http:
        reply = http.post("/v1/no_such_method", data={"a": "b"})
        assert reply.status_code == 200 and reply.json()["error"] == 1
        reply = http.get("/v1/create_task")
        assert reply.status_code == 200
        assert reply.json() == {"error": 1, "message": "GET is not accepted by create_task: "
                                "send a POST form"}  # fmt: skip
        assert http.get("/nowhere").status_code == 404  # outside /v1: plain HTTP
        task = client.start({"source": "/x.mp4", "format": [{"output": "thumbnail"}]})
        status = http.get("/v1/status", params={"task_tokens": task}).json()
        assert status["error"] == 0 and task in status["statuses"]  # GET, as pasted in a browser


def test_python_sdk_get_metadata(qthumb: QthumbProcess, clips: Path):
    """``client.get_metadata(uri)``: a ``metadata`` output whose JSON (ffprobe's shape) is read
    from ``videos[0].url``."""
    client = make_client(API_KEY, api_url=qthumb.base_url)
    raw = client.get_metadata(str(clips / "testsrc.mp4"))
    info = json.loads(raw)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 180)
    assert video["avg_frame_rate"] == "25/1" and video["display_aspect_ratio"] == "16:9"
    assert float(info["format"]["duration"]) == pytest.approx(6.0, abs=0.05)
    assert info["format"]["format_name"].startswith("mov,mp4")


def test_metadata_of_an_audio_only_source(client: Any, clips: Path):
    """Metadata needs no video track (thumbnails would)."""
    status = client.run({"source": str(clips / "audio.m4a"), "format": [{"output": "metadata"}]})
    assert status["status"] == "completed", status["error_description"]
    info = httpx.get(status["videos"][0]["url"]).json()
    assert [s["codec_type"] for s in info["streams"]] == ["audio"]


def test_python_sdk_start_runs_a_teams_profiles(tmp_path: Path, clips: Path):
    """QTHUMB_PROFILES gives start_encode (every SDK's basic start()) the profiles a team uses:
    their format entries, in the order named, run on the uri as start_encode2 would; an unknown
    id is error 12 naming it."""
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps({
        "poster": [{"output": "thumbnail", "time": 0.5, "width": 96, "user_tag": "poster"}],
        "sprite": [{"output": "thumbnails", "interval": 2, "sprite": 1, "width": 64}],
    }))  # fmt: skip
    with serving(tmp_path, clips, workers=1, QTHUMB_PROFILES=str(profiles)) as server:
        client = make_client(API_KEY, api_url=server.base_url)
        task = client.create_task()
        task.start(["poster", "sprite"], str(clips / "testsrc.mp4"), payload="from-profiles")
        assert not task.error, task.message
        deadline = time.monotonic() + 60
        while (status := task.status())["status"] not in ("completed", "error"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status["status"] == "completed", status
        assert status["payload"] == "from-profiles"
        assert [i["type"] for i in status["images"]] == ["thumbnail", "sprite", "vtt"]
        assert status["images"][0]["user_tag"] == "poster" and status["images"][0]["width"] == 96
        unknown = client.create_task()
        unknown.start("poster, nightly-4k", str(clips / "testsrc.mp4"))
        assert unknown.error == 12 and "'nightly-4k'" in unknown.message
