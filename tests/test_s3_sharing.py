"""A shared qthumb reaches a bucket only with what the query carries or what the operator
granted its API key, never with the server's own identity; tells a store that is down from an
object that is not there; leaves nothing of a destination that failed half-way; and connects
only to addresses that passed the egress check (SeaweedFS checks signatures; moto behind
proxies that refuse or fail on purpose)."""

from __future__ import annotations

import http.server
import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from PIL import Image

from qthumb.app.settings import Settings
from qthumb.app.storage import s3
from qthumb.app.storage.objects import FileError
from qthumb.app.storage.s3 import S3Credentials, S3Location, credentials
from qthumb.app.storage.s3_objects import S3Objects
from tests.conftest import API_KEY, OTHER_KEY, QthumbProcess, serving
from tests.qclient import QClient
from tests.test_s3 import SEAWEED_KEY, SEAWEED_SECRET, forward, moto_endpoint, seaweed_endpoint  # noqa: F401  (fixtures)
from tests.test_s3 import s3_client as bucket_client


@pytest.fixture(scope="module")
def buckets(seaweed_endpoint: str) -> str:  # noqa: F811
    client = bucket_client(f"http://{seaweed_endpoint}", SEAWEED_KEY, SEAWEED_SECRET)
    for name in ("granted", "ambient"):
        client.create_bucket(Bucket=name)
    return seaweed_endpoint


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, clips: Path, buckets: str
) -> Iterator[QthumbProcess]:
    """A server whose own environment holds credentials SeaweedFS accepts (as an instance
    role would): no query may use them, but the one bucket the operator names "ambient"."""
    grants = {
        f"{buckets}/granted": {"key": SEAWEED_KEY, "secret": SEAWEED_SECRET,
                               "api_keys": [OTHER_KEY]},
        f"{buckets}/ambient": "ambient",
    }  # fmt: skip
    with serving(
        tmp_path_factory.mktemp("shared"),
        clips,
        QTHUMB_API_KEYS=f"{API_KEY},{OTHER_KEY}",
        QTHUMB_S3_INSECURE_ENDPOINTS=buckets,
        QTHUMB_S3_CREDENTIALS=json.dumps(grants),
        AWS_ACCESS_KEY_ID=SEAWEED_KEY,
        AWS_SECRET_ACCESS_KEY=SEAWEED_SECRET,
    ) as server:
        yield server


def keys_in(endpoint: str, bucket: str, prefix: str) -> list[str]:
    client = bucket_client(f"http://{endpoint}", SEAWEED_KEY, SEAWEED_SECRET)
    found = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [item["Key"] for item in found]


def thumbnail_to(url: str, clips: Path, **destination: str) -> dict[str, Any]:
    fmt = {"output": "thumbnail", "width": 64, "destination": {"url": url, **destination}}
    return {"source": str(clips / "testsrc.mp4"), "format": [fmt]}


def test_a_query_never_signs_with_the_servers_own_identity(
    shared: QthumbProcess, buckets: str, clips: Path
):
    url = f"s3://{buckets}/thumbs/deputy/x.png"
    with QClient(shared.base_url, API_KEY) as mine:
        status = mine.run(thumbnail_to(url, clips))
    assert status["status"] == "error"
    assert status["error_description"].startswith(f"format 0 (thumbnail): destination {url}: "
                                                  "no credentials")  # fmt: skip
    assert "QTHUMB_S3_CREDENTIALS" in status["error_description"]
    assert keys_in(buckets, "thumbs", "deputy/") == []
    # a source: sent unsigned, which SeaweedFS refuses; the error says why
    client = bucket_client(f"http://{buckets}", SEAWEED_KEY, SEAWEED_SECRET)
    client.upload_file(str(clips / "index.mp4"), "thumbs", "sources/private.mp4")
    with QClient(shared.base_url, API_KEY) as mine:
        source = f"s3://{buckets}/thumbs/sources/private.mp4"
        status = mine.run({"source": source, "format": [{"output": "thumbnail"}]})
    assert status["status"] == "error"
    assert status["error_description"].startswith(f"source s3://{buckets}/thumbs/sources/")
    assert "no credentials" in status["error_description"]


def test_an_operators_entry_serves_the_keys_it_names_only(
    shared: QthumbProcess, buckets: str, clips: Path
):
    url = f"s3://{buckets}/granted/by-entry/x.png"
    with QClient(shared.base_url, API_KEY) as mine:
        refused = mine.run(thumbnail_to(url, clips))
    assert refused["status"] == "error" and "no credentials" in refused["error_description"]
    assert keys_in(buckets, "granted", "by-entry/") == []
    with QClient(shared.base_url, OTHER_KEY) as named:
        made = named.run(thumbnail_to(url, clips))
    assert made["status"] == "completed", made
    assert keys_in(buckets, "granted", "by-entry/") == ["by-entry/x.png"]
    # the query's own credentials always work, whoever sends them
    own = f"s3://{buckets}/thumbs/own/x.png"
    with QClient(shared.base_url, API_KEY) as mine:
        made = mine.run(thumbnail_to(own, clips, key=SEAWEED_KEY, secret=SEAWEED_SECRET))
    assert made["status"] == "completed", made


def test_an_ambient_entry_lends_the_servers_identity_to_that_bucket_alone(
    shared: QthumbProcess, buckets: str, clips: Path
):
    url = f"s3://{buckets}/ambient/lent/x.png"
    with QClient(shared.base_url, API_KEY) as mine:
        made = mine.run(thumbnail_to(url, clips))
    assert made["status"] == "completed", made
    body = bucket_client(f"http://{buckets}", SEAWEED_KEY, SEAWEED_SECRET).get_object(
        Bucket="ambient", Key="lent/x.png")["Body"].read()  # fmt: skip
    assert Image.open(io.BytesIO(body)).width == 64


def test_credentials_resolve_by_bucket_then_endpoint():
    settings = Settings(s3_credentials={
        "h:9/b": {"key": "kb", "secret": "sb", "api_keys": ["key-a"]},
        "h:9": {"key": "ke", "secret": "se"},
        "amb:9": "ambient",
    })  # fmt: skip
    at = S3Location("h", 9, "b", "k", False)
    assert credentials(at, None, None, settings, "key-a") == S3Credentials("kb", "sb")
    assert credentials(at, None, None, settings, "key-b") == S3Credentials("ke", "se")
    assert credentials(at, "mine", "s", settings, "key-b") == S3Credentials("mine", "s")
    elsewhere = S3Location("x", 9, "b", "k", False)
    assert credentials(elsewhere, None, None, settings, "key-a").anonymous
    assert credentials(elsewhere, None, None, settings, None).ambient  # the operator's own
    ambient = S3Location("amb", 9, "b", "k", False)
    assert credentials(ambient, None, None, settings, "key-a").ambient
    with pytest.raises(ValueError, match="secret"):
        credentials(at, "only-a-key", None, settings, "key-a")
    with pytest.raises(ValueError):
        Settings(s3_credentials={"h:9": {"key": "k"}})
    with pytest.raises(ValueError):
        Settings(s3_credentials={"h:9": {"key": "k", "secret": "s", "ambient": True}})


def test_clients_are_kept_in_a_bounded_cache(
    moto_endpoint: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(s3, "MAX_CLIENTS", 3)
    settings = Settings()
    host, port = moto_endpoint.split(":")
    at = S3Location(host, int(port), "b", "", False)
    for n in range(6):
        s3.s3_client(at, S3Credentials(f"key-{n}", "secret"), settings, None)
        assert s3.clients_cached() <= 3


# A store that fails on purpose: moto behind a proxy.


class _Proxy(http.server.BaseHTTPRequestHandler):
    """Forwards to moto; refuses the third PUT with 403 (``refuse_third``) or answers every
    request 503 (``down``)."""

    upstream = ""
    down = False
    refuse_third = False
    puts: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, code: str) -> None:
        payload = f"<Error><Code>{code}</Code><Message>on purpose</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload) if self.command != "HEAD" else 0))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if _Proxy.down:
            return self._answer(503, "ServiceUnavailable")
        if self.command == "PUT":
            _Proxy.puts.append(self.path)
            if _Proxy.refuse_third and len(_Proxy.puts) == 3:
                return self._answer(403, "AccessDenied")
        forward(self, self.upstream, body)
        return None

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward


@pytest.fixture(scope="module")
def proxy(moto_endpoint: str) -> Iterator[str]:  # noqa: F811
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    _Proxy.upstream = f"http://{moto_endpoint}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bucket_client(f"http://{moto_endpoint}").create_bucket(Bucket="results")
    bucket_client(f"http://{moto_endpoint}").create_bucket(Bucket="mine")
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stored_in_bucket(
    tmp_path_factory: pytest.TempPathFactory, clips: Path, proxy: str
) -> Iterator[QthumbProcess]:
    """qthumb whose own store is the proxied bucket; S3 requests are not retried by boto3
    (QTHUMB_S3_MAX_ATTEMPTS=1) and a task twice at most."""
    with serving(
        tmp_path_factory.mktemp("proxied"),
        clips,
        QTHUMB_STORAGE_URL=f"s3://{proxy}/results/qthumb",
        QTHUMB_S3_INSECURE_ENDPOINTS=proxy,
        QTHUMB_S3_CREDENTIALS=json.dumps({proxy: {"key": "k", "secret": "s"}}),
        QTHUMB_S3_MAX_ATTEMPTS="1",
        QTHUMB_MAX_ATTEMPTS="2",
    ) as server:
        yield server


def test_a_destination_that_fails_half_way_keeps_nothing(
    stored_in_bucket: QthumbProcess,
    proxy: str,
    moto_endpoint: str,  # noqa: F811
    clips: Path,
):
    where = {"url": f"s3://{proxy}/mine/series/", "key": "k", "secret": "s"}
    series = {"output": "thumbnails", "interval": 1, "width": 48, "image_format": "jpg",
              "destination": where}  # fmt: skip
    _Proxy.puts.clear()
    _Proxy.refuse_third = True
    try:
        with QClient(stored_in_bucket.base_url, API_KEY) as c:
            status = c.run({"source": str(clips / "testsrc.mp4"), "format": [series]})
    finally:
        _Proxy.refuse_third = False
    assert status["status"] == "error"
    assert "AccessDenied" in status["error_description"]
    assert len([p for p in _Proxy.puts if "/mine/series/" in p]) == 3  # two landed, then refused
    left = bucket_client(f"http://{moto_endpoint}").list_objects_v2(Bucket="mine", Prefix="series/")
    assert left.get("Contents", []) == []


def test_a_store_that_is_down_is_not_a_missing_file(stored_in_bucket: QthumbProcess, clips: Path):
    with QClient(stored_in_bucket.base_url, API_KEY) as c:
        made = c.run({"source": str(clips / "testsrc.mp4"), "format": [
            {"output": "thumbnail", "width": 48}]})  # fmt: skip
        assert made["status"] == "completed", made
        url = made["images"][0]["url"]
        assert c.fetch(url).status_code == 200
        _Proxy.down = True
        try:
            answer = c.fetch(url)
            assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0
            missing = url.rsplit("/", 1)[0] + "/nothing.png"
            assert c.fetch(missing).status_code == 503  # the store cannot say: not a 404
            # a task's results cannot be stored: tried again, then failed naming the store
            failed = c.run({"source": str(clips / "testsrc.mp4"), "format": [
                {"output": "thumbnail", "width": 48}]}, timeout=60)  # fmt: skip
        finally:
            _Proxy.down = False
        assert c.fetch(url).status_code == 200
    assert failed["status"] == "error"
    assert "the store is unavailable" in failed["error_description"]
    assert "ServiceUnavailable" in failed["error_description"]
    assert "tried again" in stored_in_bucket.logs()


def test_connections_go_to_the_address_that_was_checked(
    moto_endpoint: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """A name whose every other answer is an address the policy refuses (127.0.0.2, where a
    decoy listens): every request goes to an address that was checked, none to the decoy."""
    port = moto_endpoint.rsplit(":", 1)[1]
    hits: list[str] = []

    class Decoy(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_any(self) -> None:
            hits.append(self.path)
            self.send_response(500)
            self.end_headers()

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = do_any

    decoy = http.server.ThreadingHTTPServer(("127.0.0.2", int(port)), Decoy)
    threading.Thread(target=decoy.serve_forever, daemon=True).start()
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.2"] * 50)

    def rebinding(name: Any, *args: Any, **kwargs: Any) -> Any:
        if name == "rebinding-name":
            return real(next(answers), *args, **kwargs)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    bucket_client(f"http://{moto_endpoint}").create_bucket(Bucket="pinned")
    settings = Settings(allowed_networks=["127.0.0.1/32"], s3_max_attempts=1)
    at = S3Location("rebinding-name", int(port), "pinned", "", False)
    bucket = S3Objects(at, S3Credentials("k", "s"), settings, settings.egress)
    (tmp_path / "f.txt").write_text("pinned")
    done = refused = 0
    try:
        for n in range(6):
            try:
                bucket.put(f"pin/{n}.txt", tmp_path / "f.txt", "text/plain")
                done += 1
            except FileError as exc:
                assert "127.0.0.2" in str(exc)  # refused by the policy, not sent
                refused += 1
    finally:
        decoy.shutdown()
        decoy.server_close()
    assert hits == []
    assert done >= 2 and refused >= 2
