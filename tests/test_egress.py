"""Server-side request forgery closed: sources, callbacks and S3 endpoints reach public
addresses only unless QTHUMB_ALLOWED_NETWORKS allows more; redirects are checked again; the
decoder never follows a playlist to another file or URL."""

from __future__ import annotations

import http.server
import ipaddress
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from qthumb.app.egress import BlockedAddress, EgressPolicy
from tests.conftest import API_KEY, QthumbProcess, serving
from tests.qclient import QClient


@pytest.mark.parametrize(
    ("address", "kind"),
    [("127.0.0.1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.1", "private"),
     ("169.254.169.254", "link-local"), ("::1", "loopback"), ("fd00::1", "private"),
     ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
     ("224.0.0.1", "multicast"), ("100.64.0.1", "non-public"), ("fec0::1", "site-local")],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str, kind: str):
    article = "an" if kind[0] in "aeiou" else "a"
    with pytest.raises(BlockedAddress, match=f"{article} {kind} address; set QTHUMB_ALLOWED"):
        EgressPolicy().check_ip("h", ipaddress.ip_address(address))


# IPv6 forms that carry an IPv4 address, each judged by the address it carries.
EMBEDDED = [
    ("64:ff9b::7f00:1", "127.0.0.1", "loopback"),  # NAT64 well-known prefix
    ("64:ff9b::a9fe:a9fe", "169.254.169.254", "link-local"),
    ("64:ff9b:1::a00:1", "10.0.0.1", "private"),  # NAT64 local-use prefix
    ("2002:7f00:1::", "127.0.0.1", "loopback"),  # 6to4
    ("2002:c0a8:1::1", "192.168.0.1", "private"),
    ("::127.0.0.1", "127.0.0.1", "loopback"),  # IPv4-compatible
    ("::10.1.2.3", "10.1.2.3", "private"),
    ("::ffff:0:127.0.0.1", "127.0.0.1", "loopback"),  # IPv4-translated
    ("::ffff:10.0.0.1", "10.0.0.1", "private"),  # IPv4-mapped
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45", "private"),  # Teredo (client)
    ("2001:0:a00:1:8000:63bf:f7f7:f7f7", "10.0.0.1", "private"),  # Teredo (server)
]


@pytest.mark.parametrize(("address", "carried", "kind"), EMBEDDED)
def test_ipv6_forms_are_judged_by_the_ipv4_address_they_carry(
    address: str, carried: str, kind: str
):
    with pytest.raises(BlockedAddress, match=f"which carries {re.escape(carried)}, an? {kind}"):
        EgressPolicy().check_ip("h", ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "::ffff:0:8.8.8.8",
     "2001:0:808:808:8000:63bf:f7f7:f7f7", "2606:4700::1111", "93.184.216.34"],
)  # fmt: skip
def test_forms_carrying_public_addresses_pass(address: str):
    EgressPolicy().check_ip("h", ipaddress.ip_address(address))


def test_allowed_networks_apply_to_the_carried_address_too():
    allowed = EgressPolicy.from_cidrs(["10.0.0.0/8"])
    allowed.check_ip("h", ipaddress.ip_address("10.9.9.9"))
    allowed.check_ip("h", ipaddress.ip_address("64:ff9b::a09:909"))
    with pytest.raises(BlockedAddress, match=r"which carries 127\.0\.0\.1"):
        allowed.check_ip("h", ipaddress.ip_address("64:ff9b::7f00:1"))


def test_localhost_resolves_to_a_refused_loopback_address():
    # Whichever loopback address this host's resolver gives first (127.0.0.1 or ::1).
    with pytest.raises(BlockedAddress, match=r"localhost is (127\.0\.0\.1|::1), a loopback"):
        EgressPolicy().resolve("localhost", 80)


@pytest.mark.parametrize(
    ("url", "problem"),
    [("http://[::1", "not a valid URL"), ("http://h:abc/", "not a valid URL"),
     ("http://a\x00b/", "not a valid URL"), ("http:///x", "names no host"),
     ("ftp://h/x", "not an http(s) URL"), ("http://xn--a/", "not a valid"),
     ("http://a..b/", "is not a valid name"), (f"http://{'a' * 70}.com/", "is not a valid name"),
     ("http://h:99999/", "out of range")],
)  # fmt: skip
def test_urls_no_request_could_be_made_to_are_named(url: str, problem: str):
    from qthumb.app.egress import url_problem

    assert problem in (url_problem(url) or "")
    assert url_problem("https://example.com:8443/a.mp4?x=1") is None


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


@pytest.fixture(autouse=True)
def _fresh_recorder() -> None:
    """The recorder is shared by the module's servers: each test starts with a clean one."""
    _Recorder.hits.clear()
    _Recorder.redirect_to = ""


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
        ("{origin}/clip.mp4", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://localhost:9/x.mp4", "a loopback address"),
        ("http://[::1]:9/x.mp4", "::1 is a loopback address"),
        ("http://10.0.0.1/x.mp4", "10.0.0.1 is a private address"),
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
    assert "127.0.0.2 is a loopback address" in status["error_description"]
    assert "127.0.0.1/redirect" in _Recorder.hits
    assert not any(hit.startswith("127.0.0.2") for hit in _Recorder.hits)


def test_callbacks_and_s3_to_non_public_addresses_are_refused(
    closed: QthumbProcess, canary: tuple[str, str], clips: Path
):
    before = len(_Recorder.hits)
    status = run(closed, {
        "source": str(clips / "testsrc.mp4"), "callback_url": f"{canary[0]}/hook",
        "format": [{"output": "thumbnail"},
                   {"output": "thumbnail", "allow_soft_fail": 1,
                    "destination": {"url": "s3://127.0.0.1:9/bucket/k.png", "key": "k",
                                    "secret": "s"}}],
    })  # fmt: skip
    assert status["status"] == "completed"
    assert status["images"][1]["error_description"].startswith(
        "destination s3://127.0.0.1:9/bucket/k.png: 127.0.0.1 is a loopback address"
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

    from qthumb.app.egress import guarded_request

    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    # Listen where "localhost" resolves first here (127.0.0.1 on most hosts, ::1 on some).
    family, *_, address = socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0]
    loopback = address[0]

    class _Server(http.server.ThreadingHTTPServer):
        address_family = family

    server = _Server((loopback, 0), _Recorder)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    policy = EgressPolicy.from_cidrs(["127.0.0.0/8", "::1/128"])
    literal = f"[{loopback}]" if ":" in loopback else loopback
    try:
        with httpx.Client(verify=client_ctx) as client:
            reply = guarded_request(client, "GET", f"https://localhost:{port}/tls", policy)
            assert reply.status_code == 404 and f"{loopback}/tls" in _Recorder.hits
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                guarded_request(client, "GET", f"https://{literal}:{port}/tls", policy)
        with httpx.Client() as closed_client, pytest.raises(BlockedAddress):
            guarded_request(closed_client, "GET", f"https://localhost:{port}/", EgressPolicy())
    finally:
        server.shutdown()
        server.server_close()
