"""Guessing API keys is slowed down per client address (``QTHUMB_KEY_ATTEMPTS_PER_MINUTE``):
past the budget, a wrong key sent to ``access_token``, the console's sign-in or ``/_qthumb/``
is answered 429, error 3, with ``Retry-After``; the right key is answered throughout, from
every address, the guessing one included. Forwarded headers count only from named proxies.
The sign-in form carries its own CSRF token."""

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
        # the right key is answered throughout, from the guessing address too: one suite
        # checking that a bad key is refused locks out no other job behind the same address
        mine = guesser.post("/v1/access_token", data={"api_key": API_KEY})
        assert mine.status_code == 200 and mine.json()["error"] == 0
        mine = owner.post("/v1/access_token", data={"api_key": API_KEY})
        assert mine.status_code == 200 and mine.json()["error"] == 0
        # the console's sign-in: a wrong key is refused 429, the right one signs in
        form = guesser.get("/ui/signin")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
        assert csrf
        page = guesser.post(
            "/ui/signin", data={"api_key": "wrong-key-again01", "csrf": csrf.group(1)}
        )
        assert page.status_code == 429 and "Retry-After" in page.headers
        form = guesser.get("/ui/signin")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
        assert csrf
        page = guesser.post("/ui/signin", data={"api_key": API_KEY, "csrf": csrf.group(1)})
        assert page.status_code == 303
        time.sleep(wait)  # a token is back: a wrong key is answered as wrong again
        again = guesser.post("/v1/access_token", data={"api_key": "wrong-key-again02"})
        assert again.status_code == 200 and again.json()["error"] == 3


def test_the_control_endpoints_count_wrong_keys_and_answer_right_ones(guarded: QthumbProcess):
    """/_qthumb/ checks keys too: its wrong keys count toward the same limit (a guesser
    cannot move there once limited), and the right key is answered throughout."""
    with client(guarded.base_url, "127.0.0.6") as guesser:
        for n in range(PER_MINUTE):
            answer = guesser.get("/_qthumb/faults", params={"api_key": f"wrong-key-{n:08d}"})
            assert answer.status_code == 401, n
        assert guesser.get("/_qthumb/faults", params={"api_key": "wrong-key-x0000000"}
                           ).status_code == 429  # fmt: skip
        refused = guesser.post("/v1/access_token", data={"api_key": "wrong-key-y0000000"})
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        mine = guesser.get("/_qthumb/faults", headers={"Authorization": f"Bearer {API_KEY}"})
        assert mine.status_code == 200 and mine.json() == {"error": 0, "faults": []}
        token = guesser.post("/v1/access_token", data={"api_key": API_KEY})
        assert token.json()["error"] == 0


def test_a_forwarded_address_is_believed_from_named_proxies_only(
    guarded: QthumbProcess, tmp_path_factory: pytest.TempPathFactory, clips: Path
):
    """X-Forwarded-For names the client only when the peer is a proxy the operator named
    (QTHUMB_FORWARDED_ALLOW_IPS): otherwise rotating it does not lift the limit."""
    with client(guarded.base_url, "127.0.0.7") as guesser:
        for n in range(PER_MINUTE + 3):
            answer = guesser.post("/v1/access_token", data={"api_key": f"wrong-key-{n:08d}"},
                                  headers={"X-Forwarded-For": f"203.0.113.{n}"})  # fmt: skip
        assert answer.status_code == 429
    server = make_qthumb(tmp_path_factory.mktemp("proxied"), clips,
                         QTHUMB_KEY_ATTEMPTS_PER_MINUTE="2",
                         QTHUMB_FORWARDED_ALLOW_IPS="127.0.0.8")  # fmt: skip
    try:
        server.listen("api")
        with client(server.base_url, "127.0.0.8") as proxy:
            for n in range(6):  # a client each: none passes its own budget of 2
                answer = proxy.post("/v1/access_token", data={"api_key": f"wrong-key-{n:08d}"},
                                    headers={"X-Forwarded-For": f"198.51.100.{n}"})  # fmt: skip
                assert answer.status_code == 200, n
            for n in range(3):  # one client behind the proxy: limited on its third
                answer = proxy.post("/v1/access_token", data={"api_key": f"wrong-key-{n:08d}"},
                                    headers={"X-Forwarded-For": "198.51.100.99"})  # fmt: skip
            assert answer.status_code == 429
        with client(server.base_url, "127.0.0.9") as direct:  # not the proxy: its own address
            for n in range(3):
                forged = {"X-Forwarded-For": f"198.51.100.{50 + n}"}
                answer = direct.post("/v1/access_token", data={"api_key": f"wrong-key-{n:08d}"},
                                     headers=forged)  # fmt: skip
            assert answer.status_code == 429
    finally:
        server.stop()


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
        assert guard.wrong("a") is None  # answered as a wrong key
    assert guard.wrong("a") == 10 and guard.wait("a") == 10 and guard.wait("b") is None
    now[0] = 10.0
    assert guard.wait("a") is None
    assert guard.wrong("a") is None
    assert guard.wrong("a") == 10
    assert KeyGuard(0).wrong("a") is None  # 0: no limit
