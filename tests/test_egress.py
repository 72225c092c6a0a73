"""Server-side request forgery closed: sources, callbacks and S3 endpoints reach public
addresses only unless QTHUMB_ALLOWED_NETWORKS allows more; redirects are checked again; the
decoder never follows a playlist to another file or URL."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from app.egress import BlockedAddress, EgressPolicy
from tests.conftest import API_KEY, QthumbProcess, serving
from tests.qclient import QClient


@pytest.mark.parametrize(
    ("address", "kind"),
    [("127.0.0.1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.1", "private"),
     ("169.254.169.254", "link-local"), ("::1", "loopback"), ("fd00::1", "private"),
     ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "private"), ("224.0.0.1", "multicast"),
     ("100.64.0.1", "non-public")],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str, kind: str):
    with pytest.raises(BlockedAddress, match=f"a {kind} address; set QTHUMB_ALLOWED_NETWORKS"):
        EgressPolicy().check_ip("h", ipaddress.ip_address(address))


def test_public_and_allowed_addresses_pass():
    EgressPolicy().check_ip("h", ipaddress.ip_address("93.184.216.34"))
    EgressPolicy.from_cidrs(["10.0.0.0/8"]).check_ip("h", ipaddress.ip_address("10.9.9.9"))
    with pytest.raises(BlockedAddress, match=r"localhost is 127\.0\.0\.1, a loopback address"):
        EgressPolicy().resolve("localhost", 80)


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []
    redirect_to = ""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.hits.append(f"{self.server.server_address[0]}{self.path}")  # type: ignore[index]
        if self.path.startswith("/redirect") and self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        self.send_response(404)
        self.end_headers()

    do_POST = do_GET


def serve(host: str) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer((host, 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"


@pytest.fixture(scope="module")
def canary() -> Iterator[tuple[str, str]]:
    """An origin on 127.0.0.1 and a canary on 127.0.0.2 that must never be reached."""
    origin, origin_url = serve("127.0.0.1")
    hidden, hidden_url = serve("127.0.0.2")
    yield origin_url, hidden_url
    for s in (origin, hidden):
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[QthumbProcess]:
    """qthumb that may reach 127.0.0.1 only (not the rest of 127.0.0.0/8)."""
    with serving(tmp_path_factory.mktemp("strict"), clips, workers=1,
                 QTHUMB_ALLOWED_NETWORKS="127.0.0.1/32") as server:  # fmt: skip
        yield server


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[QthumbProcess]:
    """qthumb with the default: no private or loopback address at all."""
    settings = {"QTHUMB_ALLOWED_NETWORKS": "", "QTHUMB_CALLBACK_ATTEMPTS": "2",
                "QTHUMB_CALLBACK_BACKOFF": "0.1"}  # fmt: skip
    with serving(tmp_path_factory.mktemp("closed"), clips, workers=1, **settings) as server:
        yield server


def run(server: QthumbProcess, query: dict) -> dict:
    with QClient(server.base_url, API_KEY) as client:
        return client.run(query)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{origin}/clip.mp4", "127.0.0.1 is 127.0.0.1, a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is 169.254.169.254, a "
         "link-local address"),
        ("http://localhost:9/x.mp4", "localhost is 127.0.0.1, a loopback address"),
        ("http://[::1]:9/x.mp4", "a loopback address"),
        ("http://10.0.0.1/x.mp4", "10.0.0.1 is 10.0.0.1, a private address"),
    ],
)  # fmt: skip
def test_sources_to_non_public_addresses_are_refused(
    closed: QthumbProcess, canary: tuple[str, str], source: str, reason: str
):
    before = len(_Recorder.hits)
    status = run(closed, {"source": source.format(origin=canary[0]),
                          "format": [{"output": "thumbnail"}]})  # fmt: skip
    assert status["status"] == "error"
    assert reason in status["error_description"]
    assert "QTHUMB_ALLOWED_NETWORKS" in status["error_description"]
    assert len(_Recorder.hits) == before  # nothing was even connected to


def test_redirects_are_checked_again(strict: QthumbProcess, canary: tuple[str, str]):
    origin, hidden = canary
    _Recorder.redirect_to = f"{hidden}/secret"
    status = run(strict, {"source": f"{origin}/redirect", "format": [{"output": "thumbnail"}]})
    assert status["status"] == "error"
    assert "127.0.0.2 is 127.0.0.2, a loopback address" in status["error_description"]
    assert "127.0.0.1/redirect" in _Recorder.hits
    assert not any(hit.startswith("127.0.0.2") for hit in _Recorder.hits)


def test_callbacks_and_s3_to_non_public_addresses_are_refused(
    closed: QthumbProcess, canary: tuple[str, str], clips: Path
):
    before = len(_Recorder.hits)
    status = run(closed, {
        "source": str(clips / "testsrc.mp4"), "callback_url": f"{canary[0]}/hook",
        "format": [{"output": "thumbnail"},
                   {"output": "thumbnail",
                    "destination": {"url": "s3://127.0.0.1:9/bucket/k.png", "key": "k",
                                    "secret": "s"}}],
    })  # fmt: skip
    assert status["status"] == "completed"
    assert status["images"][1]["error_description"].startswith(
        "destination s3://127.0.0.1:9/bucket/k.png: 127.0.0.1 is 127.0.0.1, a loopback address"
    )
    assert len(_Recorder.hits) == before


def test_a_playlist_in_a_video_is_refused_and_nothing_is_read(
    strict: QthumbProcess, canary: tuple[str, str], clips: Path, tmp_path: Path
):
    """An HLS playlist named .mp4 whose segments point at a local file and at the origin."""
    origin, _ = canary
    evil = clips / "evil-playlist.mp4"
    evil.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n"
        f"#EXTINF:1,\n{clips / 'testsrc.mp4'}\n#EXTINF:1,\n{origin}/segment.ts\n"
        "#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    )
    m3u8 = clips / "evil.m3u8"
    m3u8.write_text(evil.read_text())
    before = len(_Recorder.hits)
    for source in (evil, m3u8):
        status = run(strict, {"source": str(source), "format": [{"output": "thumbnail"}]})
        assert status["status"] == "error"
        assert (
            "playlists (HLS, DASH), concat lists and image sequences are not accepted"
            in (status["error_description"])
        )
    assert len(_Recorder.hits) == before


def test_https_goes_to_the_checked_address_and_still_verifies_the_name():
    """The request is sent to the resolved IP, with SNI and certificate checks on the name."""
    import ssl

    import httpx
    import trustme

    from app.egress import guarded_request

    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    policy = EgressPolicy.from_cidrs(["127.0.0.0/8"])
    try:
        with httpx.Client(verify=client_ctx) as client:
            reply = guarded_request(client, "GET", f"https://localhost:{port}/tls", policy)
            assert reply.status_code == 404 and "127.0.0.1/tls" in _Recorder.hits
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                guarded_request(client, "GET", f"https://127.0.0.1:{port}/tls", policy)
        with httpx.Client() as closed_client, pytest.raises(BlockedAddress):
            guarded_request(closed_client, "GET", f"https://localhost:{port}/", EgressPolicy())
    finally:
        server.shutdown()
        server.server_close()
