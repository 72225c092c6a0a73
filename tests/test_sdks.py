"""Qencode's official SDKs, unchanged but for the base URL, against ``qthumb serve``: the Python
``qencode3`` (PyPI) in this process and the Node ``qencode-api`` (npm) through ``node``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import qencode3

from tests.conftest import API_KEY, QthumbProcess, serving
from tests.qclient import ended
from tests.waiting import eventually

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
    # custom_start sends what it is given: the caller wraps the query (docs/compatibility.md)
    task.custom_start({"query": {"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail", "time": 0.5, "width": 320},
        {"output": "thumbnails", "interval": 2, "sprite": 1, "columns": 3, "width": 160},
    ]}}, payload="py-payload")  # fmt: skip
    assert not task.error, task.message
    assert task.status_url == f"{qthumb.base_url}/v1/status"
    status = eventually(lambda: ended(task.status()), 60)
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
  try {
    const templates = await client.getTemplates();
    console.log(JSON.stringify({ ok: true, ids: templates.map((t) => t.id) }));
  }
  catch (e) { console.log(JSON.stringify({ ms: Date.now() - started, message: e.message })); }
})();
"""


def test_node_get_templates_answers_and_unknown_methods_fail_at_once(qthumb: QthumbProcess):
    """``getTemplates()`` lists the profiles (none without QTHUMB_PROFILES); a method qthumb
    does not serve answers a Qencode error (HTTP 200, error 1), so the Node SDK fails at once
    instead of retrying 20 times, 3 s apart."""
    out = subprocess.run(["node", "-e", NODE_TEMPLATES, API_KEY, qthumb.base_url], cwd=JS_DIR,
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"ok": True, "ids": []}
    unknown = NODE_TEMPLATES.replace("client.getTemplates()", 'client.Request("tasks", {})')
    out = subprocess.run(["node", "-e", unknown, API_KEY, qthumb.base_url], cwd=JS_DIR,
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    reply = json.loads(out.stdout.strip().splitlines()[-1])
    assert reply["ms"] < 1000, reply
    assert reply["message"].startswith("unknown method 'tasks': qthumb serves")


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
        status = eventually(lambda: ended(task.status()), 60)
        assert status["status"] == "completed", status
        assert status["payload"] == "from-profiles"
        assert [i["type"] for i in status["images"]] == ["thumbnail", "sprite", "vtt"]
        assert status["images"][0]["user_tag"] == "poster" and status["images"][0]["width"] == 96
        unknown = client.create_task()
        unknown.start("poster, nightly-4k", str(clips / "testsrc.mp4"))
        assert unknown.error == 12 and "'nightly-4k'" in unknown.message


EXAMPLES = JS_DIR / "node_modules" / "qencode-api" / "Examples"
SHIPPED_SOURCES = ("https://servername/folder/video1.mp4", "https://servername/folder/video2.mp4",
                   "https://servername/folder/video3.mp4")  # fmt: skip


def shipped_example(name: str, base_url: str, sources: list[Path], folder: Path) -> Path:
    """One of the Node SDK's own example scripts, changed only in its API URL, key and
    sources, written where ``node`` runs it."""
    text = (EXAMPLES / name).read_text()
    text = text.replace('"your_api_key_here"', json.dumps(API_KEY))
    endpoint = f"new QencodeApiClient({{key: apiKey, endpoint: {json.dumps(base_url)}}})"
    text = text.replace("new QencodeApiClient(apiKey)", endpoint)
    assert any(shipped in text for shipped in SHIPPED_SOURCES)
    for shipped, ours in zip(SHIPPED_SOURCES, sources, strict=True):
        text = text.replace(shipped, str(ours))
    assert not any(shipped in text for shipped in SHIPPED_SOURCES)
    assert "your_api_key_here" not in text and endpoint in text
    if text.rstrip().endswith("})"):  # ProfileEncodingExample defines its function, never calls it
        text = text.rstrip() + "();\n"
    script = folder / name
    script.write_text(text)
    return script


def run_example(script: Path, base_url: str) -> dict[str, Any]:
    """Run the example until qthumb has ended its task (the examples poll every 10 s, and
    forever when a task fails): its task's final status, read as any client reads it."""
    env = {**os.environ, "NODE_PATH": str(JS_DIR / "node_modules")}
    with subprocess.Popen(["node", str(script)], cwd=script.parent, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL) as node:  # fmt: skip
        try:
            assert node.stdout is not None
            said, token = [], ""
            for line in node.stdout:
                said.append(line)
                token = line.split(":", 1)[1].strip() if line.startswith("Created new") else token
                if line.startswith("Status URL:"):
                    break
            assert token and said[-1].startswith("Status URL:"), "".join(said)
            with httpx.Client(base_url=base_url) as http:

                def status() -> dict[str, Any]:
                    reply = http.post("/v1/status", data={"task_tokens": token}).json()
                    return dict(reply["statuses"][token])

                return eventually(lambda: ended(status()), 90, every=0.1)
        finally:
            node.kill()


def test_node_sdk_custom_examples_stitch_as_shipped(qthumb: QthumbProcess, clips: Path,
                                                    tmp_path: Path):  # fmt: skip
    """Both of the Node SDK's custom-encoding examples send a list of sources (``stitch``):
    the JSON one makes its mp4 of the three joined; the other asks for advanced_hls, which
    qthumb does not make, so that output alone fails, saying so (not the stitch)."""
    video = clips / "testsrc.mp4"  # 6 s
    script = shipped_example("CustomEncodingJSONExample.js", qthumb.base_url,
                             [video, video, video], tmp_path)  # fmt: skip
    status = run_example(script, qthumb.base_url)
    assert status["status"] == "completed", status["error_description"]
    [mp4] = status["videos"]
    (tmp_path / "made.mp4").write_bytes(httpx.get(mp4["url"]).content)
    with av.open(str(tmp_path / "made.mp4")) as made:
        assert made.duration / 1e6 == pytest.approx(6 + 6 + 0.575, abs=0.1)
        # as the one source's mp4 would be: size 320x240 on a 16:9 picture (its aspect kept)
        assert (made.streams.video[0].width, made.streams.video[0].height) == (320, 180)
    three = [video, clips / "upright.mp4", clips / "index.mp4"]
    script = shipped_example("CustomEncodingExample.js", qthumb.base_url, three, tmp_path)
    status = run_example(script, qthumb.base_url)
    assert status["status"] == "error"
    assert "advanced_hls" in status["error_description"], status["error_description"]
    assert "stitch" not in status["error_description"]


def test_node_sdk_profile_example_starts_a_stitch_on_profiles(tmp_path: Path, clips: Path):
    """The Node SDK's ``Start(profiles, [sources])`` example, as shipped, on a team's profiles
    (its three ids), and ``getTemplates()`` lists them."""
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps({
        "5adb0584aa43b": [{"output": "thumbnail", "time": 0.5, "width": 96}],
        "5adb0584aacca": [{"output": "thumbnails", "interval": 2, "sprite": 1, "width": 64}],
        "5adb0584ab49e": [{"output": "mp4", "size": "160x90"}],
    }))  # fmt: skip
    with serving(tmp_path, clips, workers=1, QTHUMB_PROFILES=str(profiles)) as server:
        three = [clips / "testsrc.mp4", clips / "upright.mp4", clips / "index.mp4"]
        script = shipped_example("ProfileEncodingExample.js", server.base_url, three, tmp_path)
        status = run_example(script, server.base_url)
        assert status["status"] == "completed", status["error_description"]
        assert [i["type"] for i in status["images"]] == ["thumbnail", "sprite", "vtt"]
        # 6 s + 2 s + 0.575 s from 0.01567 s: the thumbnail's time is half of it
        assert status["images"][0]["time"] == pytest.approx((6 + 2 + 0.575) / 2, abs=0.05)
        templates = ["node", "-e", NODE_TEMPLATES, API_KEY, server.base_url]
        out = subprocess.run(templates, cwd=JS_DIR, capture_output=True, text=True, timeout=60,
                             check=True)  # fmt: skip
        reply = json.loads(out.stdout.strip().splitlines()[-1])
        assert reply == {"ok": True, "ids": list(json.loads(profiles.read_text()))}
