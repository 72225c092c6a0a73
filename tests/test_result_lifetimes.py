"""How long results live, and how large they may be: temporary-storage results removed once
``QTHUMB_STORAGE_TTL`` has passed (files and URL), and a result larger than one S3 part
(``QTHUMB_S3_MULTIPART_THRESHOLD``, 8 MiB by default) stored whole in parts on a real S3 server
(moto's server mode)."""

from __future__ import annotations

import hashlib
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import API_KEY, QthumbProcess, eventually, serving
from tests.qclient import QClient
from tests.test_s3 import moto_endpoint, s3_client  # noqa: F401  (a fixture)

TTL = 4.0  # seconds: long enough to read a result once, short enough to wait for


@pytest.fixture(scope="module")
def short_lived(
    tmp_path_factory: pytest.TempPathFactory,
    clips: Path,
    moto_endpoint: str,  # noqa: F811
) -> Iterator[QthumbProcess]:
    with serving(tmp_path_factory.mktemp("lifetimes"), clips, workers=1,
                 QTHUMB_STORAGE_TTL=str(TTL), QTHUMB_SWEEP_INTERVAL="0.2",
                 QTHUMB_S3_INSECURE_ENDPOINTS=moto_endpoint) as server:  # fmt: skip
        yield server


def test_temporary_results_are_removed_after_their_ttl(short_lived: QthumbProcess, clips: Path):
    with QClient(short_lived.base_url, API_KEY) as client:
        token = client.start({"source": str(clips / "testsrc.mp4"), "format": [
            {"output": "thumbnail", "width": 64},
            {"output": "thumbnails", "interval": 1, "width": 32, "sprite": 1}]})  # fmt: skip
        status = client.wait(token)
        assert status["status"] == "completed", status
        urls = [image["url"] for image in status["images"]]
        assert len(urls) >= 3  # the thumbnail, a sheet and its VTT
        for url in urls:
            assert client.fetch(url).status_code == 200
        stored = [p for p in (short_lived.data_dir / "storage").rglob("*") if p.is_file()]
        assert stored
        # gone once the TTL has passed and a sweep ran: every URL, every file
        eventually(
            lambda: all(client.fetch(u).status_code == 404 for u in urls),
            TTL + 10,
            lambda: f"still served: {[u for u in urls if client.fetch(u).is_success]}",
        )
        assert not [p for p in stored if p.exists()]
        # the task itself is still there to read, its status unchanged
        assert client.status(token)["status"] == "completed"


@pytest.fixture(scope="module")
def noise_4k(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Path:
    """Two frames of 4K colour noise: its frame as a PNG is about 20 MB, over two S3 parts."""
    path = clips / "noise4k.mp4"
    if not path.exists():
        noise = "geq=r='random(1)*255':g='random(2)*255':b='random(3)*255'"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"nullsrc=s=3840x2160:r=5:d=0.4,format=gbrp,{noise}", "-c:v", "libx264",
                        "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv444p", str(path)],
                       check=True)  # fmt: skip
    return path


def test_a_result_larger_than_a_part_is_stored_whole_in_parts(
    short_lived: QthumbProcess,
    noise_4k: Path,
    moto_endpoint: str,  # noqa: F811
):
    s3_client(f"http://{moto_endpoint}").create_bucket(Bucket="large-results")
    key = "big/frame.png"
    with QClient(short_lived.base_url, API_KEY) as client:
        status = client.run({"source": str(noise_4k), "format": [
            {"output": "thumbnail", "image_format": "png", "destination": {
                "url": f"s3://{moto_endpoint}/large-results/{key}", "key": "k",
                "secret": "s"}}]}, timeout=120)  # fmt: skip
    assert status["status"] == "completed", status
    head = s3_client(f"http://{moto_endpoint}").head_object(Bucket="large-results", Key=key)
    size = head["ContentLength"]
    assert size > 2 * 8 * 1024**2, size  # more than two parts' worth
    # a multipart object's ETag is the MD5 of its parts' MD5s, then "-" and the part count
    parts = int(head["ETag"].strip('"').rsplit("-", 1)[1])
    assert parts == -(-size // (8 * 1024**2))
    body = s3_client(f"http://{moto_endpoint}").get_object(Bucket="large-results", Key=key)
    data = body["Body"].read()
    assert len(data) == size == status["images"][0]["size"]
    # whole: each part in its place (the parts' MD5s give the ETag), and a PNG that decodes
    md5s = b"".join(hashlib.md5(data[i:i + 8 * 1024**2]).digest()
                    for i in range(0, size, 8 * 1024**2))  # fmt: skip
    assert head["ETag"].strip('"') == f"{hashlib.md5(md5s).hexdigest()}-{parts}"
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (3840, 2160)
        image.load()
