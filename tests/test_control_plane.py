"""The control plane of a shared qthumb: a key reaches its own state only, what reaches every
key's takes the operator's admin key, and what a key sends the control endpoints is bounded
(bodies in bytes and depth, rules in number and size, numbers in ASCII digits): a clear 400,
never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import API_KEY, OTHER_KEY, QthumbProcess, serving
from tests.qclient import QClient

ADMIN_KEY = "operator-admin-key-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[QthumbProcess]:
    with serving(tmp_path_factory.mktemp("plane"), clips, workers=1,
                 QTHUMB_API_KEYS=f"{API_KEY},{OTHER_KEY}",
                 QTHUMB_ADMIN_KEY=ADMIN_KEY) as s:  # fmt: skip
        yield s


def control(server: QthumbProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.base_url}/_qthumb", timeout=30,
                        headers={"Authorization": f"Bearer {key}"})  # fmt: skip


def query(clips: Path) -> dict[str, object]:
    return {"source": str(clips / "testsrc.mp4"), "format": [{"output": "thumbnail"}]}


def test_only_the_admin_key_resets_every_key(server: QthumbProcess, clips: Path):
    with QClient(server.base_url, API_KEY) as mine, QClient(server.base_url, OTHER_KEY) as theirs:
        kept = theirs.start(query(clips))
        assert theirs.wait(kept)["status"] == "completed"
        with control(server, API_KEY) as c:
            refused = c.post("/reset", params={"all": "1"})
            assert refused.status_code == 403 and "QTHUMB_ADMIN_KEY" in refused.json()["message"]
        assert theirs.status(kept)["status"] == "completed"  # nothing of another key
        with control(server, ADMIN_KEY) as admin:
            assert admin.post("/reset").status_code == 403  # says what it would do: all=1
            assert admin.get("/faults").status_code == 403  # faults belong to an API key
            done = admin.post("/reset", params={"all": "1"})
            assert done.status_code == 200 and done.json()["keys"] == 2, done.text
        assert theirs.post("status", {"task_tokens": kept})["statuses"] == {kept: None}
        # the admin key is no API key
        assert mine.post("access_token", {"api_key": ADMIN_KEY})["error"] == 3


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("[" * 10_000 + "]" * 10_000, "nested over"),
        ("[" + "{}," * 30_000 + "{}]", "over 65536 bytes"),
        ("\xff\xfe", "not JSON"),
        ([{"method": "status", "error": 5}] * 101, "at most 100 rules"),
        ({"method": "status", "error": 5, "message": "x" * 2000}, "over 1000 characters"),
        ({"method": "status", "error": 5, "notes": "x" * 5000}, "4096 bytes"),
        ({"method": "status", "error": 5, "message": "nul \u0000"}, "NUL"),
        ({"method": "status", "http_status": 101}, "http_status must be a number from 200"),
        ('{"task": {}, "hold": {"encoding": 1e400}}', "hold must map"),
    ],
)
def test_a_bad_rule_is_a_clear_400(server: QthumbProcess, body: object, words: str):
    with control(server, API_KEY) as c:
        if isinstance(body, str):
            answer = c.post("/faults", content=body.encode("latin-1"))
        else:
            answer = c.post("/faults", json=body)
        assert answer.status_code == 400, answer.text
        assert words in answer.json()["message"]


def test_rules_a_key_keeps_are_bounded(server: QthumbProcess):
    with control(server, API_KEY) as c:
        c.delete("/faults")
        rules = [{"method": "status", "error": 5, "times": 1}] * 100
        assert c.post("/faults", json=rules).status_code == 200
        more = c.post("/faults", json=[{"method": "status", "error": 5}])
        assert more.status_code == 400 and "100 rules at most" in more.json()["message"]
        with control(server, OTHER_KEY) as other:  # another key's own budget
            assert other.post("/faults", json=[{"method": "status", "error": 5}]).is_success
            other.delete("/faults")
        for wanted in ("²", "1_0", "-1", "99999999999999999999999"):
            assert c.delete("/faults", params={"id": wanted}).status_code == 400, wanted
        assert c.delete("/faults").json()["removed"] == 100


def test_a_status_without_a_body_is_answered_as_one(server: QthumbProcess):
    with control(server, API_KEY) as c, QClient(server.base_url, API_KEY) as mine:
        assert c.post("/faults", json=[{"method": "access_token", "http_status": 204,
                                        "times": 1}]).is_success  # fmt: skip
        answer = mine.http.post("/v1/access_token", data={"api_key": API_KEY})
        assert answer.status_code == 204 and answer.content == b""
        assert mine.post("access_token", {"api_key": API_KEY})["error"] == 0
        c.delete("/faults")
