"""``QTHUMB_SEED``: two fresh servers given the same calls answer the same session, task and
upload tokens, through Qencode's Python SDK, on both backends; one key's calls never shift
another's; a reset of a key starts its tokens again; refused without ``QTHUMB_CONTROL``; the
banner says tokens are predictable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from qencode3 import tus_uploader

from qthumb.app.settings import Settings
from qthumb.app.testing import qthumb_server
from tests.conftest import API_KEY, OTHER_KEY, serving
from tests.qclient import QClient
from tests.test_sdks import make_client

# tuspy 0.2 (the one qencode3's uploader works with) leaves the uploaded file open.
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def other_keys_task(url: str) -> None:
    with QClient(url, OTHER_KEY) as other:
        other.new_task()


def calls(url: str, clips: Path, interleave_other_key: bool) -> list[str]:
    """A session, two tasks, an upload to the first and its start: every token answered."""
    if interleave_other_key:  # another key's calls before and between: they shift nothing
        other_keys_task(url)
    client = make_client(API_KEY, api_url=url)
    first, second = client.create_task(), client.create_task()
    if interleave_other_key:
        other_keys_task(url)
    upload = tus_uploader.upload(
        file_path=str(clips / "testsrc.mp4"), url=f"{first.upload_url}/{first.task_token}"
    )
    uid = upload.url.split(":", 1)[1].rsplit("/", 1)[-1]
    first.custom_start({"query": {"source": upload.url, "format": [{"output": "thumbnail"}]}})
    return [client.access_token, first.task_token, second.task_token, uid]


@pytest.mark.parametrize("engine", ["embedded", "distributed"])
def test_two_fresh_servers_answer_the_same_tokens(
    tmp_path: Path, clips: Path, engine: str, request: pytest.FixtureRequest
):
    def run(name: str, interleave: bool) -> list[str]:
        # each server its own database (and, distributed, Redis database and bucket)
        fresh = request.getfixturevalue("engines").settings() if engine == "distributed" else {}
        settings: dict[str, str] = fresh
        with serving(tmp_path / name, clips, QTHUMB_SEED="golden-run",
                     QTHUMB_API_KEYS=f"{API_KEY},{OTHER_KEY}", **settings) as server:  # fmt: skip
            return calls(server.base_url, clips, interleave)

    first, second = run("a", False), run("b", True)
    assert first == second
    assert len(set(first)) == 4 and all(len(t) == 32 for t in first), first
    # another seed: other tokens
    with (
        serving(tmp_path / "c", clips, QTHUMB_SEED="another") as server,
        QClient(server.base_url, API_KEY) as client,
    ):
        assert client.token() != first[0]


def test_a_reset_key_starts_its_tokens_again(tmp_path: Path, clips: Path):
    with (
        serving(tmp_path, clips, QTHUMB_SEED="golden-run") as server,
        QClient(server.base_url, API_KEY) as client,
    ):
        before = [client.token(), client.new_task()]
        bearer = {"Authorization": f"Bearer {API_KEY}"}
        reset = client.http.post("/_qthumb/reset", headers=bearer)
        assert reset.status_code == 200, reset.text
        assert [client.token(), client.new_task()] == before
        # without a reset, the next tokens are new ones
        assert client.token() not in before


def test_the_seed_needs_control_and_the_banner_says_so(tmp_path: Path):
    with pytest.raises(ValidationError, match="QTHUMB_SEED makes every token predictable"):
        Settings(seed="golden-run", control=False)
    with qthumb_server(workers=1, seed="golden-run") as server:
        assert server.data_dir is not None
        banner = (server.data_dir / "serve.log").read_text()
        assert "tokens:  PREDICTABLE: drawn from QTHUMB_SEED" in banner
        key = server.api_key
    with qthumb_server(workers=1, seed="golden-run") as again:
        assert again.api_key == key  # the fixture's key comes from the seed too
