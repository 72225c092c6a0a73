"""``/_qthumb/state`` and ``QTHUMB_INIT_DIR``: a key's ended tasks, results and fault rules
exported as one archive, the key reset, the archive loaded again: the same status objects and
the same bytes served, on both backends; loaded at start into a fresh server (the other
backend's archive too), its URLs made from that server's address; bad archives refused
naming why, changing nothing."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY, OTHER_KEY, QthumbProcess, make_qthumb, serving
from tests.qclient import QClient

RULE = {"task": {"user_tag": "state-rule"}, "hold": {"encoding": 60}, "times": 3}


@pytest.fixture(scope="module")
def control(qthumb: QthumbProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{qthumb.base_url}/_qthumb", timeout=60,
                      headers={"Authorization": f"Bearer {API_KEY}"}) as c:  # fmt: skip
        yield c


@pytest.fixture(scope="module")
def exported(qthumb: QthumbProcess, control: httpx.Client, clips: Path) -> dict[str, Any]:
    """Two ended tasks (a thumbnail and a sprite with its VTT; a source that is not media) and
    a rule, then the archive and what the server answered for them."""
    with QClient(qthumb.base_url, API_KEY) as client:
        done = client.start({"source": str(clips / "testsrc.mp4"), "format": [
            {"output": "thumbnail", "time": 1},
            {"output": "thumbnails", "interval": 2, "sprite": 1},
        ]})  # fmt: skip
        failed = client.start({"source": str(clips / "not-video.html"),
                               "format": [{"output": "thumbnail"}]})  # fmt: skip
        assert client.wait(done)["status"] == "completed"
        assert client.wait(failed)["status"] == "error"
        tokens = [done, failed]
        statuses = client.post("status", {"task_tokens": ",".join(tokens)})["statuses"]
        urls = [image["url"] for image in statuses[done]["images"]]
        assert len(urls) >= 3, statuses[done]  # the thumbnail, the sheet(s), the VTT
        served = {url: client.fetch(url).content for url in urls}
    assert control.post("/faults", json=[RULE]).json()["error"] == 0
    answer = control.get("/state")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/gzip"
    return {"archive": answer.content, "tokens": tokens, "statuses": statuses, "served": served}


def relative(statuses: dict[str, Any], base: str) -> str:
    return json.dumps(statuses, sort_keys=True).replace(base, "BASE")


def test_export_reset_and_load_give_back_the_same_tasks_and_bytes(
    qthumb: QthumbProcess, control: httpx.Client, exported: dict[str, Any]
):
    with tarfile.open(fileobj=io.BytesIO(exported["archive"])) as tar:
        names = tar.getnames()
    assert names[:3] == ["manifest.json", "tasks.jsonl", "faults.json"]
    assert sum(n.startswith("files/") for n in names) == len(exported["served"])
    assert control.post("/reset").json()["error"] == 0
    with QClient(qthumb.base_url, API_KEY) as client:
        tokens = ",".join(exported["tokens"])
        assert set(client.post("status", {"task_tokens": tokens})["statuses"].values()) == {None}
        loaded = control.post("/state", content=exported["archive"]).json()
        assert loaded["error"] == 0 and loaded["tasks"] == 2 and loaded["faults"] == 1, loaded
        assert loaded["files"] == len(exported["served"]), loaded
        assert client.post("status", {"task_tokens": tokens})["statuses"] == exported["statuses"]
        for url, content in exported["served"].items():
            assert client.fetch(url).content == content
    rules = control.get("/faults").json()["faults"]
    assert [(r["kind"], r["user_tag"], r["hold"], r["times"], r["fired"]) for r in rules] == [
        ("task", "state-rule", {"encoding": 60}, 3, 0)
    ]
    # loading it again replaces the key's own tasks: nothing doubled
    again = control.post("/state", content=exported["archive"]).json()
    assert again["tasks"] == 2 and len(control.get("/faults").json()["faults"]) == 1, again


def test_a_fresh_server_loads_it_at_start(
    tmp_path: Path, clips: Path, qthumb: QthumbProcess, exported: dict[str, Any]
):
    """``QTHUMB_INIT_DIR`` on the embedded backend, whichever backend exported it: ready with
    the tasks, their URLs on the new server's address, the same bytes."""
    init = tmp_path / "init.d"
    init.mkdir()
    (init / "ui-fixtures.tar.gz").write_bytes(exported["archive"])
    with serving(tmp_path / "fresh", clips, QTHUMB_INIT_DIR=str(init)) as fresh:
        assert "loaded:  ui-fixtures.tar.gz" in fresh.logs()
        with QClient(fresh.base_url, API_KEY) as client:
            tokens = ",".join(exported["tokens"])
            statuses = client.post("status", {"task_tokens": tokens})["statuses"]
            assert relative(statuses, fresh.base_url) == relative(
                exported["statuses"], qthumb.base_url
            )
            for url, content in exported["served"].items():
                moved = url.replace(qthumb.base_url, fresh.base_url)
                assert client.fetch(moved).content == content


def test_bad_archives_are_refused_and_change_nothing(
    exported: dict[str, Any], tmp_path: Path, clips: Path
):
    keys = f"{API_KEY},{OTHER_KEY}"
    small = {"QTHUMB_MAX_SOURCE_BYTES": "2000000"}  # archives of 2 MB, unpacking to 8 MB
    with serving(tmp_path / "two", clips, QTHUMB_API_KEYS=keys, **small) as server:

        def client(key: str) -> httpx.Client:
            return httpx.Client(base_url=f"{server.base_url}/_qthumb", timeout=60,
                                headers={"Authorization": f"Bearer {key}"})  # fmt: skip

        with client(API_KEY) as mine, client(OTHER_KEY) as other:
            not_gzip = other.post("/state", content=b"not an archive")
            assert not_gzip.status_code == 400, not_gzip.text
            assert "not a readable .tar.gz" in not_gzip.json()["message"]
            assert mine.post("/state", content=exported["archive"]).json()["tasks"] == 2
            # the tokens are another key's now: refused whole, nothing of it loaded
            taken = other.post("/state", content=exported["archive"])
            assert taken.status_code == 400 and "belongs to another API key" in taken.text
            assert other.get("/faults").json()["faults"] == []
            # a gzip bomb: 16 MB of zeros in 16 KB, refused at its header
            bomb = other.post("/state", content=bomb_archive(16 * 2**20))
            assert bomb.status_code == 400 and "unpacks to more than 8000000 bytes" in bomb.text
            not_text = other.post("/state", content=archive_of({"tasks.jsonl": b"\xff\xfe{"}))
            assert not_text.status_code == 400 and "tasks.jsonl is not UTF-8" in not_text.text
            too_big = other.post("/state", content=b"\0" * 2_000_001)
            assert too_big.status_code == 413, too_big.text
            with QClient(server.base_url, API_KEY) as poll:
                tokens = ",".join(exported["tokens"])
                statuses = poll.post("status", {"task_tokens": tokens})["statuses"]
            assert all(status is not None for status in statuses.values())
    # at start: the server does not start, and says which file and why
    init = tmp_path / "init.d"
    init.mkdir()
    (init / "broken.tar.gz").write_bytes(b"\x1f\x8b not really")
    server = make_qthumb(tmp_path / "bad", clips, QTHUMB_INIT_DIR=str(init))
    proc = server.start("serve", "--port", "0", "--workers", "1")
    assert proc.wait(timeout=60) == 2
    assert f"qthumb: QTHUMB_INIT_DIR {init / 'broken.tar.gz'}: not a readable" in server.logs()
    assert "Traceback" not in server.logs()


def archive_of(members: dict[str, bytes]) -> bytes:
    """A state archive of these members, after a manifest of the format."""
    out = io.BytesIO()
    manifest = json.dumps({"format": "qthumb-state", "version": 1}).encode()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in {"manifest.json": manifest, **members}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def bomb_archive(size: int) -> bytes:
    """A state archive whose one result member holds ``size`` zeros (compressed: ~size/1000)."""
    return archive_of({f"files/{'0' * 32}/0/bomb.png": bytes(size)})


def test_the_state_needs_control(tmp_path: Path, clips: Path):
    with serving(tmp_path, clips, QTHUMB_CONTROL="0") as server:
        answer = httpx.get(f"{server.base_url}/_qthumb/state",
                           headers={"Authorization": f"Bearer {API_KEY}"})  # fmt: skip
        assert answer.status_code == 404


def test_the_image_reads_its_init_folder():
    dockerfile = (Path(__file__).parent.parent / "docker" / "Dockerfile").read_text()
    assert "QTHUMB_INIT_DIR=/etc/qthumb/init.d" in dockerfile


def test_the_docs_curl_session_works_as_pasted(tmp_path: Path, clips: Path):
    """docs/testing.md's curl block, as pasted (the key and port changed): the archive made,
    the key reset, the archive loaded: the task is there again."""
    docs = (Path(__file__).parent.parent / "docs" / "testing.md").read_text()
    [block] = [b for b in re.findall(r"```sh\n(.*?)```", docs, flags=re.S) if "$Q/state" in b]
    with serving(tmp_path / "server", clips) as server:
        with QClient(server.base_url, API_KEY) as client:
            token = client.start({"source": str(clips / "testsrc.mp4"),
                                  "format": [{"output": "thumbnail"}]})  # fmt: skip
            assert client.wait(token)["status"] == "completed"
            script = block.replace("KEY=your-api-key", f"KEY={API_KEY}").replace(
                "127.0.0.1:8000", f"127.0.0.1:{server.port}"
            )
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120)  # fmt: skip
            assert done.returncode == 0, done.stderr + server.logs()
            assert '"tasks":1' in done.stdout.replace(" ", ""), done.stdout
            assert client.status(token)["status"] == "completed"
        assert (tmp_path / "ui-fixtures.tar.gz").stat().st_size > 1000
