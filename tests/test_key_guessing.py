"""Guessing API keys is slowed down per client address (``QTHUMB_KEY_ATTEMPTS_PER_MINUTE``):
past the budget, ``access_token`` and the console's sign-in answer 429, error 3, with
``Retry-After``, and the right key from that address waits too; from another address it works
throughout, and from the guessing one again once the bucket refills. The sign-in form carries
its own CSRF token."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qthumb.app.api.key_guard import KeyGuard
from tests.conftest import API_KEY, QthumbProcess, make_qthumb

PER_MINUTE = 30  # a token every 2 s


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[QthumbProcess]:
    server = make_qthumb(tmp_path_factory.mktemp("keys"), clips,
                         QTHUMB_KEY_ATTEMPTS_PER_MINUTE=str(PER_MINUTE))  # fmt: skip
    try:
        server.listen("api")
        yield server
    finally:
        server.stop()


def client(base: str, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.x.y.z is loopback)."""
    return httpx.Client(base_url=base, timeout=30,
                        transport=httpx.HTTPTransport(local_address=address))  # fmt: skip


def test_wrong_keys_are_slowed_down_per_address(guarded: QthumbProcess):
    base = guarded.base_url
    with client(base, "127.0.0.2") as guesser, client(base, "127.0.0.3") as owner:
        for n in range(PER_MINUTE):
            answer = guesser.post("/v1/access_token", data={"api_key": f"wrong-key-{n:08d}"})
            assert (answer.status_code, answer.json()["error"]) == (200, 3), n
        refused = guesser.post("/v1/access_token", data={"api_key": "wrong-key-again00"})
        assert refused.status_code == 429 and refused.json()["error"] == 3
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 60 // PER_MINUTE + 1
        assert "retry in" in refused.json()["message"]
        # the right key: refused from the guessing address, never from another
        assert guesser.post("/v1/access_token", data={"api_key": API_KEY}).status_code == 429
        mine = owner.post("/v1/access_token", data={"api_key": API_KEY})
        assert mine.status_code == 200 and mine.json()["error"] == 0
        # the console's sign-in counts the same wrong keys
        form = guesser.get("/ui/signin")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
        assert csrf
        page = guesser.post("/ui/signin", data={"api_key": API_KEY, "csrf": csrf.group(1)})
        assert page.status_code == 429 and "Retry-After" in page.headers
        time.sleep(wait)  # a token is back: the right key gets in
        again = guesser.post("/v1/access_token", data={"api_key": API_KEY})
        assert again.status_code == 200 and again.json()["error"] == 0


def test_the_sign_in_form_needs_its_own_token(guarded: QthumbProcess):
    with client(guarded.base_url, "127.0.0.4") as browser:
        assert browser.post("/ui/signin", data={"api_key": API_KEY}).status_code == 403
        form = browser.get("/ui/signin")
        assert "samesite=strict" in form.headers["set-cookie"].lower()
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
        assert token
        forged = browser.post("/ui/signin", data={"api_key": API_KEY, "csrf": "0" * 64})
        assert forged.status_code == 403
        signed = browser.post("/ui/signin", data={"api_key": API_KEY, "csrf": token.group(1)})
        assert signed.status_code == 303 and "qthumb_console" in browser.cookies
    with client(guarded.base_url, "127.0.0.5") as other:  # another site's page: no cookie
        sent = other.post("/ui/signin", data={"api_key": API_KEY, "csrf": token.group(1)})
        assert sent.status_code == 403


def test_the_bucket_refills_and_forgets():
    now = [0.0]
    guard = KeyGuard(6, clock=lambda: now[0])  # a token every 10 s
    for _ in range(6):
        assert guard.wait("a") is None
        guard.wrong("a")
    assert guard.wait("a") == 10 and guard.wait("b") is None
    now[0] = 10.0
    assert guard.wait("a") is None
    guard.wrong("a")
    assert guard.wait("a") == 10
    assert KeyGuard(0).wait("a") is None  # 0: no limit
