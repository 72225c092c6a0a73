"""qthumb's preview extensions (#26), checked by what they make: placeholders that decode back
to the picture, the best frame of a clip with black, blurred, fading and good seconds, ``pad``
geometry on images, videos and URLs, and storyboards and animations by URL that are what a
task stores. One embedded server: the routes' mechanics run on both backends in
``test_on_demand``."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import API_KEY, QthumbProcess, ffmpeg, serving
from tests.qclient import QClient
from tests.test_thumbnail import barcode_index, frame_index

JS = Path(__file__).parent / "js"
PERIOD = 4.0  # the ranked clip repeats black, blurred, fading, good: a second each


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[QthumbProcess]:
    with serving(tmp_path_factory.mktemp("previews"), clips) as running:
        yield running


@pytest.fixture()
def qc(server: QthumbProcess) -> Iterator[QClient]:
    with QClient(server.base_url, API_KEY) as c:
        yield c


@pytest.fixture(scope="module")
def halves(clips: Path) -> Path:
    """320x180, red on the left, blue on the right."""
    path = clips / "halves-quiet.mp4"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "color=c=red:s=160x180:r=25:d=2", "-f", "lavfi",
               "-i", "color=c=blue:s=160x180:r=25:d=2", "-filter_complex", "[0][1]hstack",
               "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def ranked_clip(clips: Path) -> Path:
    """20 s of a second black, a second of blurred bars, a second fading in from black and a
    second of sharp bars, five times over."""
    path = clips / "ranked.mp4"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "color=black:s=320x180:r=25:d=1",
               *[a for _ in range(3) for a in ("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=1")],
               "-filter_complex", "[1]gblur=sigma=6[b];[2]fade=t=in:st=0:d=1[f];"
               "[0][b][f][3]concat=n=4,loop=loop=4:size=100:start=0",
               "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path


def image(qc: QClient, url: str) -> Image.Image:
    return Image.open(io.BytesIO(qc.fetch(url).content)).convert("RGB")


def decoded(kind: str, text: str, size: tuple[int, int] = (32, 18)) -> Image.Image:
    """A placeholder turned back into a picture by the reference decoders (evanw/thumbhash,
    woltapp/blurhash, in Node: ``tests/js/placeholder-decode.mjs``), at ``size``."""
    ask = [{"kind": kind, "text": text, "width": size[0], "height": size[1]}]
    done = subprocess.run(["node", str(JS / "placeholder-decode.mjs")], input=json.dumps(ask),
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    [out] = json.loads(done.stdout)
    rgba = base64.b64decode(out["rgba"])
    picture = Image.frombytes("RGBA", (out["width"], out["height"]), rgba).convert("RGB")
    return picture.resize(size, Image.Resampling.BILINEAR)


def downscale(picture: Image.Image, size: tuple[int, int] = (32, 18)) -> Image.Image:
    """What a placeholder can hold: the picture at 4x3, brought back to ``size``."""
    return picture.resize((4, 3), Image.Resampling.BOX).resize(size, Image.Resampling.BILINEAR)


def mean_error(a: Image.Image, b: Image.Image) -> float:
    return float(
        np.abs(np.asarray(a, np.float32) - np.asarray(b.resize(a.size), np.float32)).mean()
    )


@pytest.mark.parametrize("kind", ["blurhash", "thumbhash"])
def test_placeholders_decode_back_to_the_picture(qc: QClient, halves: Path, clips: Path,
                                                  kind: str):  # fmt: skip
    status = qc.run({"source": str(halves), "format": [
        {"output": "thumbnail", "placeholder": kind, "image_format": "jpg"},
        {"output": "thumbnail", "placeholder": kind, "rotate": 180},
        {"output": "thumbnails", "interval": 1, "placeholder": kind, "width": 64},
    ]})  # fmt: skip
    assert status["status"] == "completed", status
    pictures = [i for i in status["images"] if i["type"] in ("thumbnail", "frame")]
    entries = sorted(pictures, key=lambda i: (i["tag"], i.get("time") or 0))
    plain, turned, *frames = entries
    for entry in (plain, turned, *frames):
        small = downscale(image(qc, entry["url"]))
        back = decoded(kind, entry["placeholder"])
        # measured: 31 (blurhash) and 9 (thumbhash) for this red|blue edge; ~150 mirrored
        assert mean_error(small, back) < 50, (entry, mean_error(small, back))
        mirrored = back.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        assert mean_error(small, mirrored) > 2 * mean_error(small, back)
    # red on the left, blue on the right; turned half a turn, the other way round
    back = np.asarray(decoded(kind, plain["placeholder"]), np.float32)
    assert back[:, :8, 0].mean() > back[:, :8, 2].mean() + 60
    assert back[:, -8:, 2].mean() > back[:, -8:, 0].mean() + 60
    flipped = np.asarray(decoded(kind, turned["placeholder"]), np.float32)
    assert flipped[:, :8, 2].mean() > flipped[:, :8, 0].mean() + 60


def test_placeholders_per_tile_and_by_url(qc: QClient, server: QthumbProcess, clips: Path):
    status = qc.run({"source": str(clips / "testsrc.mp4"), "format": [
        {"output": "thumbnails", "interval": 2, "sprite": 1, "storyboard": 1, "width": 64,
         "placeholder": "thumbhash"},
    ]})  # fmt: skip
    by_type = {i["type"]: i for i in status["images"]}
    board = json.loads(qc.fetch(by_type["storyboard"]["url"]).content)
    sheet = image(qc, by_type["sprite"]["url"])
    for tile in board["tiles"]:
        w, h = board["tile_width"], board["tile_height"]
        cut = sheet.crop((tile["x"], tile["y"], tile["x"] + w, tile["y"] + h))
        assert mean_error(downscale(cut), decoded("thumbhash", tile["placeholder"])) < 50
    answer = httpx.get(f"{server.base_url}/v1/thumbnail.jpg", params={
        "task_token": qc.last_token,
        "time": "1", "placeholder": "blurhash"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    shown = downscale(Image.open(io.BytesIO(answer.content)).convert("RGB"))
    assert mean_error(shown, decoded("blurhash", answer.headers["x-placeholder"])) < 50


def test_smart_takes_a_sharp_still_frame(qc: QClient, ranked_clip: Path):
    """Every asked time has a good second within the window (2 s): the frame taken is in one,
    never black, blurred or mid-fade, though a plain thumbnail lands in each of those."""
    fractions = [0.06, 0.11, 0.14, 0.3, 0.45, 0.52, 0.66, 0.71, 0.88, 0.97]
    status = qc.run({"source": str(ranked_clip), "format": [
        {"output": "thumbnail", "time": f, "smart": 1, "user_tag": str(f)} for f in fractions
    ]})  # fmt: skip
    assert status["status"] == "completed", status
    for entry in status["images"]:
        assert 3.0 <= entry["time"] % PERIOD < 4.0, entry
        assert 0.7 < entry["score"] <= 1.0, entry
    plain = qc.run({"source": str(ranked_clip), "format": [
        {"output": "thumbnail", "time": f} for f in fractions
    ]})  # fmt: skip
    seconds = {int(e["time"] % PERIOD) for e in plain["images"]}
    assert seconds == {0, 1, 2, 3}  # the plain frames fall in every kind of second


def test_pad_geometry_on_images_videos_and_urls(qc: QClient, server: QthumbProcess,
                                               halves: Path):  # fmt: skip
    status = qc.run({"source": str(halves), "format": [
        {"output": "thumbnail", "width": 100, "height": 100, "resize_mode": "pad",
         "pad_color": "#00ff00"},
        {"output": "mp4", "width": 100, "height": 100, "resize_mode": "pad", "pad_color": "lime"},
        {"output": "mp4", "width": 100, "height": 100, "resize_mode": "crop", "user_tag": "c"},
    ]})  # fmt: skip
    assert status["status"] == "completed", status
    [thumb] = status["images"]
    padded, cropped = sorted(status["videos"], key=lambda v: v["user_tag"] or "")
    # 320x180 in 100x100: 100x56 (rounded) from y=22, green above and below
    _check_pad(image(qc, thumb["url"]), top=22, tolerance=8)
    _check_pad(_first_frame(qc, padded["url"]), top=22, tolerance=40)
    # crop: the centre 180x180 of the source, so both colours, no band
    crop = np.asarray(_first_frame(qc, cropped["url"]), np.float32)
    assert crop[:, :40, 0].mean() > 180 and crop[:, -40:, 2].mean() > 180
    token = qc.last_token
    url = f"{server.base_url}/v1/thumbnail.png?task_token={token}&width=100&height=100&fit=pad"
    by_url = Image.open(io.BytesIO(httpx.get(url + "&pad_color=00ff00", timeout=30).content))
    assert np.array_equal(np.asarray(by_url.convert("RGB")), np.asarray(
        Image.open(io.BytesIO(httpx.get(url + "&pad_color=%2300ff00", timeout=30).content))
        .convert("RGB")))  # fmt: skip
    _check_pad(by_url.convert("RGB"), top=22, tolerance=8)
    turned = httpx.get(f"{server.base_url}/v1/thumbnail.png?task_token={token}&rotate=90",
                       timeout=30)  # fmt: skip
    upright = Image.open(io.BytesIO(turned.content)).convert("RGB")
    assert upright.size == (180, 320)
    top = np.asarray(upright, np.float32)[:40]  # the left (red) half turned to the top
    assert top[:, :, 0].mean() > 180 and top[:, :, 2].mean() < 60


def _check_pad(picture: Image.Image, top: int, tolerance: int) -> None:
    pixels = np.asarray(picture, np.float32)
    assert picture.size == (100, 100)
    green = np.array([0, 255, 0], np.float32)
    for band in (pixels[: top - 2], pixels[100 - top + 2 :]):
        assert np.abs(band - green).mean() < tolerance
    middle = pixels[top + 4 : 100 - top - 4]
    assert middle[:, :40, 0].mean() > 180 and middle[:, -40:, 2].mean() > 180


def _first_frame(qc: QClient, url: str) -> Image.Image:
    with av.open(io.BytesIO(qc.fetch(url).content)) as container:
        frame = next(container.decode(video=0))
        return frame.to_image().convert("RGB")


def test_storyboard_by_url_is_what_a_task_stores(qc: QClient, server: QthumbProcess,
                                                 clips: Path):  # fmt: skip
    fields = {"interval": 0.5, "width": 32, "columns": 3}
    status = qc.run({"source": str(clips / "index.mp4"), "format": [
        {"output": "thumbnails", "sprite": 1, "storyboard": 1, "image_format": "jpg", **fields},
    ]})  # fmt: skip
    token = qc.last_token
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in status["images"]:
        by_type.setdefault(entry["type"], []).append(entry)
    task_sheets = {e["url"].rsplit("/", 1)[1]: qc.fetch(e["url"]).content
                   for e in by_type["sprite"]}  # fmt: skip
    task_vtt = qc.fetch(by_type["vtt"][0]["url"]).text
    task_json = json.loads(qc.fetch(by_type["storyboard"][0]["url"]).content)
    query = f"task_token={token}&width=32&columns=3&interval=0.5"
    vtt_url = f"{server.base_url}/v1/storyboard.vtt?{query}"
    answer = httpx.get(vtt_url, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/vtt")
    board = httpx.get(f"{server.base_url}/v1/storyboard.json?{query}", timeout=60).json()
    # the same cues, naming the same sheets by URL; the sheets byte for byte the task's
    names = {}
    for sheet, task_sheet in zip(board["sheets"], task_json["sheets"], strict=True):
        names[sheet["url"]] = task_sheet["url"]
        got = httpx.get(urljoin(vtt_url, sheet["url"]), timeout=30)
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
        assert got.content == task_sheets[task_sheet["url"]]
    renamed = answer.text
    for url, name in names.items():
        renamed = renamed.replace(f"{url}#xywh=", f"{name}#xywh=")
    assert renamed == task_vtt
    assert {**board, "sheets": task_json["sheets"]} == task_json
    # right tiles: tile k shows frame 12.5k (0.5 s apart at 25 fps)
    first = Image.open(io.BytesIO(task_sheets[task_json["sheets"][0]["url"]])).convert("RGB")
    for k, tile in enumerate(board["tiles"][:9]):
        cut = first.crop((tile["x"] + 4, tile["y"] + 4, tile["x"] + 28, tile["y"] + 20))
        assert abs(frame_index(cut) - int(k * 12.5)) < 1.0, k
    # cached: the same bytes and ETag again, 304 when the client has them
    again = httpx.get(vtt_url, timeout=30)
    assert again.content == answer.content and again.headers["etag"] == answer.headers["etag"]
    fresh = httpx.get(vtt_url, headers={"If-None-Match": answer.headers["etag"]}, timeout=30)
    assert fresh.status_code == 304


def test_storyboard_defaults_and_refusals(server: QthumbProcess, qc: QClient, clips: Path):
    qc.run({"source": str(clips / "index.mp4"), "format": [{"output": "metadata"}]})
    token = qc.last_token
    base = f"{server.base_url}/v1/storyboard"
    board = httpx.get(f"{base}.json?task_token={token}", timeout=60).json()
    # 4 s: every 0.5 s, the nicest interval under 100 tiles; 256 px wide, 10 a row
    assert len(board["tiles"]) == 8 and board["tile_width"] == 256 and board["columns"] == 8
    assert [t["start"] for t in board["tiles"]][:3] == [0.0, 0.5, 1.0]
    webp = httpx.get(f"{base}.vtt?task_token={token}&format=webp", timeout=60)
    assert "storyboard.webp?" in webp.text
    for ext, query, status, words in [
        (".jpg", "&sheet=7", 404, "sheets"), (".vtt", "&interval=0.01", 400, "interval"),
        (".jpg", "&width=0", 400, "width"), (".vtt", "&format=png", 400, "format"),
        (".json", "&columns=x", 400, "columns"), (".jpg", "&sheet=-1", 400, "sheet"),
    ]:  # fmt: skip
        answer = httpx.get(f"{base}{ext}?task_token={token}{query}", timeout=60)
        assert answer.status_code == status and words in answer.json()["message"], answer.text
    assert httpx.get(f"{base}.png?task_token={token}", timeout=30).status_code == 404


def test_animations_by_url(server: QthumbProcess, qc: QClient, clips: Path):
    # the barcode clip: each frame's index read back exactly through the GIF's palette
    qc.run({"source": str(clips / "barcode.mp4"), "format": [{"output": "metadata"}]})
    token = qc.last_token
    base = f"{server.base_url}/v1/animated"
    gif = httpx.get(f"{base}.gif?task_token={token}", timeout=60)
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif", gif.text
    with Image.open(io.BytesIO(gif.content)) as shown:
        # 4 s (the source ends before 5), 15 fps, the source's 64 px (under 320)
        assert shown.size == (64, 48) and shown.n_frames == 60
        # frame n is the source's frame shown at n / 15 s (25 fps): its neighbour fails
        indexes = []
        for n in range(shown.n_frames):
            shown.seek(n)
            indexes.append(barcode_index(shown.convert("RGB")))
        assert indexes == [n * 25 // 15 for n in range(60)]
    webp = httpx.get(f"{base}.webp?task_token={token}&start=1&end=2&fps=10&width=32",
                     timeout=60)  # fmt: skip
    assert webp.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(webp.content)) as shown:
        assert shown.size == (32, 24) and shown.n_frames == 10
        indexes = []
        for n in range(shown.n_frames):
            shown.seek(n)
            indexes.append(barcode_index(shown.convert("RGB")))
        assert indexes == [25 + n * 25 // 10 for n in range(10)]  # 1 s is frame 25
    again = httpx.get(f"{base}.gif?task_token={token}",
                      headers={"If-None-Match": gif.headers["etag"]}, timeout=30)  # fmt: skip
    assert again.status_code == 304
    for query, words in [("&start=0&end=11", "10 s"), ("&fps=60", "fps"), ("&start=9", "end"),
                         ("&width=641", "width"), ("&end=1&start=2", "after")]:  # fmt: skip
        answer = httpx.get(f"{base}.gif?task_token={token}{query}", timeout=30)
        assert answer.status_code == 400 and words in answer.json()["message"], answer.text


def test_smart_on_a_clip_shorter_than_its_window(qc: QClient, clips: Path):
    """Eight frames: the candidates crowd into them, each still scored with its next frame."""
    path = clips / "eight-frames.mp4"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=0.32", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    status = qc.run({"source": str(path), "format": [
        {"output": "thumbnail", "time": t, "smart": 1} for t in (0, 0.5, 1)
    ]})  # fmt: skip
    assert status["status"] == "completed", status
    for entry in status["images"]:
        assert 0 <= entry["time"] <= 0.28 and entry["score"] > 0.5, entry


def test_a_storyboard_by_url_has_a_thousand_tiles_at_most(qc: QClient, server: QthumbProcess,
                                                          clips: Path):  # fmt: skip
    path = clips / "two-minutes.mp4"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=32x24:r=5:d=120", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    qc.run({"source": str(path), "format": [{"output": "metadata"}]})
    base = f"{server.base_url}/v1/storyboard.vtt?task_token={qc.last_token}"
    answer = httpx.get(f"{base}&interval=0.1", timeout=60)
    assert answer.status_code == 400 and "over 1000" in answer.json()["message"], answer.text
    assert httpx.get(f"{base}&interval=0.2", timeout=60).status_code == 200  # 600 tiles
