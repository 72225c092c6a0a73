"""qthumb's extensions to ``thumbnail``/``thumbnails``: ``smart: 1`` (not a black, blank or
fading frame), a JSON storyboard beside a sprite's VTT, HiDPI tiles (``dpr: 2``) whose VTT
still speaks CSS pixels, and AVIF images. Each is checked by what it makes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from tests.conftest import FPS, ffmpeg
from tests.qclient import QClient
from tests.test_thumbnail import frame_index
from tests.test_thumbnails import parse_cues


@pytest.fixture(scope="module")
def fade_clip(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Path:
    """10 s: black for 3 s, a fade in over the 4th second, then moving colour bars. Written
    into the local source folder the server reads."""
    path = clips / "fade-in.mp4"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=10,fade=t=in:st=3:d=1",
               "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path


def picture(client: QClient, url: str) -> Image.Image:
    return Image.open(io.BytesIO(client.fetch(url).content))


def test_smart_skips_black_and_fading_frames(client: QClient, fade_clip: Path):
    status = client.run({"source": str(fade_clip), "format": [
        {"output": "thumbnail", "time": 0.2},
        {"output": "thumbnail", "time": 0.2, "smart": 1},
        {"output": "thumbnail", "time": 0.6, "smart": 1},
    ]})  # fmt: skip
    plain, smart, fine = sorted(status["images"], key=lambda i: i["tag"])
    assert plain["time"] == 2.0
    assert ImageStat.Stat(picture(client, plain["url"]).convert("L")).mean[0] < 5
    # the nearest frame after the black that is neither dark nor flat: late in the fade
    assert 3.0 < smart["time"] <= 4.5, smart["time"]
    shown = ImageStat.Stat(picture(client, smart["url"]).convert("L"))
    assert shown.mean[0] > 24 and shown.stddev[0] > 10
    assert fine["time"] == 6.0  # a good frame is kept as it is


def test_storyboard_and_hidpi_tiles(client: QClient, clips: Path):
    status = client.run({"source": str(clips / "index.mp4"), "format": [
        {"output": "thumbnails", "interval": 0.5, "sprite": 1, "columns": 3, "width": 32,
         "storyboard": 1, "dpr": 2},
    ]})  # fmt: skip
    by_type = {i["type"]: i for i in status["images"]}
    assert set(by_type) == {"sprite", "vtt", "storyboard"}
    sheet = picture(client, by_type["sprite"]["url"]).convert("RGB")
    cues = parse_cues(client.fetch(by_type["vtt"]["url"]).text)
    board = json.loads(client.fetch(by_type["storyboard"]["url"]).content)
    assert (board["tile_width"], board["tile_height"], board["dpr"]) == (32, 24, 2)
    assert sheet.size == (3 * 64, 3 * 48)  # 8 tiles, 3 a row, at twice the CSS size
    assert board["sheets"] == [{"url": "sprite.png", "width": 96, "height": 72}]
    assert len(board["tiles"]) == len(cues) == 8
    for k, (tile, (start, end, name, xywh)) in enumerate(zip(board["tiles"], cues, strict=True)):
        assert (tile["start"], tile["end"]) == (round(start, 3), round(end, 3))
        assert name == "sprite.png" and xywh == (tile["x"], tile["y"], 32, 24)
        # CSS pixels in the VTT; the sheet's pixels at twice those show frame k
        x, y = 2 * tile["x"], 2 * tile["y"]
        shown = sheet.crop((x + 4, y + 4, x + 60, y + 44))
        assert abs(frame_index(shown) - int(k * 0.5 * FPS)) < 0.5


def test_avif(client: QClient, clips: Path):
    status = client.run({"source": str(clips / "index.mp4"), "format": [
        {"output": "thumbnail", "time": 0.5, "image_format": "avif"},
        {"output": "thumbnails", "interval": 2, "sprite": 1, "image_format": "avif"},
    ]})  # fmt: skip
    for image in status["images"]:
        if image["type"] == "vtt":
            assert "sprite.avif#xywh=" in client.fetch(image["url"]).text
            continue
        answer = client.fetch(image["url"])
        assert answer.content[4:12] == b"ftypavif"
        assert answer.headers["content-type"].startswith("image/avif")
        with Image.open(io.BytesIO(answer.content)) as shown:
            assert shown.format == "AVIF" and shown.size == (image["width"], image["height"])
            if image["type"] == "thumbnail":
                assert abs(frame_index(shown) - 50) < 1  # lossy, still the right frame


@pytest.mark.parametrize(("fmt", "words"), [
    ({"output": "thumbnails", "interval": 1, "dpr": 5}, "dpr must be 1, 2, 3 or 4"),
    ({"output": "thumbnails", "interval": 1, "storyboard": 1}, "it needs sprite: 1"),
    ({"output": "thumbnail", "smart": "maybe"}, "smart"),
])  # fmt: skip
def test_extension_fields_are_checked(client: QClient, clips: Path, fmt: dict[str, object],
                                      words: str):  # fmt: skip
    answer = client.post("start_encode2", {
        "task_token": client.new_task(),
        "query": json.dumps({"query": {"source": str(clips / "index.mp4"), "format": [fmt]}}),
    })  # fmt: skip
    assert answer["error"] == 1 and words in answer["message"], answer
