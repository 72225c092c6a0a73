"""Golden responses: the JSON of every endpoint for known tasks, kept in ``tests/golden/``.

Volatile values (tokens, the server's address, times, byte sizes) are normalised, then the
reply must equal the golden file: same keys, same types, same fixed values. A deliberate change
of the wire format is recorded with ``QTHUMB_UPDATE_GOLDEN=1 make test`` and reviewed as a diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import QthumbProcess
from tests.qclient import QClient

GOLDEN = Path(__file__).parent / "golden"
TOKEN = re.compile(r"[0-9a-f]{32}")
TMP = re.compile(r"/[^\s'\"]*/pytest-\d+/")
VOLATILE_NUMBERS = {"size", "source_size", "bitrate"}


def normalise(value: Any, base: str, key: str = "") -> Any:
    if isinstance(value, dict):
        return {TOKEN.sub("<token>", k): normalise(v, base, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, base, key) for v in value]
    if isinstance(value, str):
        if key == "expire":
            return "<datetime>" if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", value) else value
        return TMP.sub("<tmp>/", TOKEN.sub("<token>", value.replace(base, "<base>")))
    if key in VOLATILE_NUMBERS and isinstance(value, int | float) and not isinstance(value, bool):
        return f"<{type(value).__name__}>"
    return value


def check(name: str, reply: dict[str, Any], base: str) -> None:
    got = normalise(reply, base)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("QTHUMB_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    elif not path.exists():  # never written by the test itself: it would compare with itself
        pytest.fail(f"golden file {path.name} is missing: QTHUMB_UPDATE_GOLDEN=1 writes it")
    assert got == json.loads(path.read_text()), name


def test_golden_replies(client: QClient, qthumb: QthumbProcess, clips: Path):
    base = qthumb.base_url
    post = client.post
    check("access_token", post("access_token", {"api_key": client.api_key}), base)
    check("access_token_error_3", post("access_token", {"api_key": "0123456789abcdefXYZ"}), base)
    token = client.token()
    created = post("create_task", {"token": token})
    check("create_task", created, base)
    check("create_task_error_5", post("create_task", {"token": "0" * 32}), base)
    task = created["task_token"]
    check("status_created", post("status", {"task_tokens": task}), base)
    query = {"query": {"source": str(clips / "index.mp4"), "format": [
        {"output": "thumbnail", "time": 0.5, "user_tag": "poster"},
        {"output": "thumbnails", "interval": 2, "sprite": 1, "columns": 2, "width": 32,
         "image_format": "jpg", "user_tag": "sprite"},
        {"output": "mp3"},
    ]}}  # fmt: skip
    started = post("start_encode2", {"task_token": task, "query": json.dumps(query),
                                     "payload": "golden"})  # fmt: skip
    check("start_encode2", started, base)
    check(
        "start_encode2_error_1",
        post("start_encode2", {"task_token": task, "query": json.dumps(query)}),
        base,
    )
    client.wait(task)
    check("status_completed", post("status", {"task_tokens[]": task}), base)
    failed = client.start({"source": "/etc/passwd", "format": [{"output": "thumbnail"}]})
    client.wait(failed)
    check("status_error", post("status", {"task_tokens": failed}), base)
    check("status_unknown", post("status", {"task_tokens": "e" * 32}), base)
    check("status_error_13", post("status", {"task_tokens": "nope"}), base)
    check("start_encode_error_12", post("start_encode", {"task_token": task}), base)
