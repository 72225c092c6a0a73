"""``output: "thumbnail"`` end to end: HTTP source → qthumb serve → temporary storage."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from tests.conftest import FPS, INDEX_FRAMES
from tests.qclient import QClient

DURATION = INDEX_FRAMES / FPS


def image_of(client: QClient, url: str) -> Image.Image:
    response = client.fetch(url)
    assert response.status_code == 200, url
    return Image.open(io.BytesIO(response.content))


def frame_index(image: Image.Image) -> float:
    """Inverse of the clip's ``lum = 16 + 2n`` after limited-range YUV → RGB → L.

    Neighbouring frames lie 1.0 apart on this scale, so ±0.5 tells them apart.
    """
    luma = ImageStat.Stat(image.convert("L")).mean[0]
    return luma * 219 / 510


def barcode_index(image: Image.Image) -> int:
    """The frame index the barcode clip writes into each frame: bit k is column k (8 px wide)
    white; robust to palettes and lossy coding, so a neighbouring frame never passes."""
    grey = image.convert("L").resize((8, 1), Image.Resampling.BOX)
    return sum(1 << k for k in range(8) if grey.getpixel((k, 0)) > 128)


def only_image(status: dict[str, Any]) -> dict[str, Any]:
    assert status["status"] == "completed", status
    assert status["error"] == 0 and status["error_description"] is None
    [image] = status["images"]
    return image


def test_whole_flow_over_http_source(client: QClient, source_server: str, qthumb):
    status = client.run(
        {
            "source": f"{source_server}/testsrc.mp4",
            "format": [{"output": "thumbnail", "time": "0.5", "user_tag": "mid", "width": "160"}],
        }
    )
    image = only_image(status)
    task_url = f"{qthumb.base_url}/storage/"
    assert image["url"].startswith(task_url) and image["url"].endswith("/0/thumbnail.png")
    assert image["tag"] == "image-0-0" and image["user_tag"] == "mid"
    assert image["profile"] is None and image["storage"] is None and image["type"] == "thumbnail"
    assert (image["width"], image["height"]) == (160, 90)
    assert status["duration"] == "6.000" and status["percent"] == 100.0
    picture = image_of(client, image["url"])
    assert picture.size == (160, 90) and picture.format == "PNG"
    assert image["size"] == len(client.fetch(image["url"]).content)


@pytest.mark.parametrize(
    ("time", "expected_frame"),
    [
        (0, 0),
        (1.0, INDEX_FRAMES - 1),  # the end: the last frame
        (0.5, 50),  # on a keyframe
        (0.3, 30),  # between keyframes: 5 frames... 20 frames after one
        (0.123, 12),  # inside frame 12's span (12.3 frames)
        (0.77, 77),
        ("63", 63),  # percent (older docs), as a string
        (0.9999, 99),
    ],
)
def test_thumbnail_is_the_frame_at_the_time(client: QClient, clips: Path, time, expected_frame):
    status = client.run(
        {"source": str(clips / "index.mp4"), "format": [{"output": "thumbnail", "time": time}]}
    )
    image = only_image(status)
    assert image["time"] == pytest.approx(expected_frame / FPS)
    assert frame_index(image_of(client, image["url"])) == pytest.approx(expected_frame, abs=0.5)


def test_times_fall_between_keyframes(clips: Path):
    """The clip really has 2 s GOPs and reordered B-frames, so the cases above test exact
    decoding, not seeking, and display times that differ from decode times."""
    rows = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
         "packet=pts,dts,flags", "-of", "csv=p=0", str(clips / "index.mp4")],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.split()  # fmt: skip
    packets = [row.split(",") for row in rows]
    keyframes = [int(pts) for pts, _, flags in packets if flags.startswith("K")]
    assert keyframes == [0, 25600]  # frames 0 and 50
    assert sum(1 for pts, dts, _ in packets if pts != dts) > 50


def test_frame_number_wins_over_time(client: QClient, clips: Path):
    fmt = {"output": "thumbnail", "time": 0.9, "frame_number": "37", "image_format": "png"}
    status = client.run({"source": f"file://{clips / 'index.mp4'}", "format": [fmt]})
    assert frame_index(image_of(client, only_image(status)["url"])) == pytest.approx(37, abs=0.5)


def test_start_time_alone_is_the_frame_at_start_time(client: QClient, clips: Path):
    """Qencode's thumbnail recipe: "for an exact second, use start_time". With no time it is
    the frame at start_time (1.24 s: frame 31), not the middle of what follows; with a time,
    that fraction of what follows."""
    status = client.run({"source": str(clips / "index.mp4"), "format": [
        {"output": "thumbnail", "start_time": 1.24},
        {"output": "thumbnail", "start_time": 1.24, "time": 0.5}]})  # fmt: skip
    at_start, middle = (image for image in status["images"])
    assert frame_index(image_of(client, at_start["url"])) == pytest.approx(31, abs=0.5)
    # the middle of [1.24, 4): 2.62 s, frame 65
    assert frame_index(image_of(client, middle["url"])) == pytest.approx(65, abs=0.5)


def test_rotated_source_is_upright(client: QClient, clips: Path, tmp_path: Path):
    status = client.run(
        {"source": str(clips / "rotated.mp4"), "format": [{"output": "thumbnail", "time": 0.5}]}
    )
    ours = image_of(client, only_image(status)["url"]).convert("RGB")
    # ffmpeg's CLI applies the display matrix itself: it is the reference.
    ref_path = tmp_path / "ref.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", "1", "-i", str(clips / "rotated.mp4"),
         "-frames:v", "1", str(ref_path)],
        check=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    with Image.open(ref_path) as ref:
        reference = ref.convert("RGB")
    assert ours.size == reference.size == (48, 64)
    diff = ImageStat.Stat(ImageChops.difference(ours, reference)).mean
    assert max(diff) < 4
    assert ours.convert("L").getpixel((4, 60)) > 200  # the marker went to the bottom-left


def test_non_square_pixels_give_display_aspect(client: QClient, clips: Path):
    status = client.run(
        {"source": str(clips / "anamorphic.mp4"), "format": [{"output": "thumbnail"}]}
    )
    image = image_of(client, only_image(status)["url"]).convert("L")
    assert image.size == (85, 48)
    row = [image.getpixel((x, 8)) for x in range(85)]
    marker_width = sum(1 for v in row if v > 128)
    assert 20 <= marker_width <= 22  # 16 stored pixels at 4:3


@pytest.mark.parametrize(
    ("fmt", "size", "pil_format"),
    [
        ({"width": 100}, (100, 56), "PNG"),
        ({"height": "90", "image_format": "jpg", "quality": 70}, (160, 90), "JPEG"),
        ({"size": "100x100", "image_format": "webp"}, (100, 100), "WEBP"),
        ({"size": "100x100", "resize_mode": "crop"}, (100, 100), "PNG"),
        ({"resolution": 72}, (128, 72), "PNG"),
        ({"width": 50, "height": 50, "resolution": 36}, (64, 36), "PNG"),
    ],
)
def test_sizes_and_formats(client: QClient, clips: Path, fmt: dict, size, pil_format):
    status = client.run(
        {"source": str(clips / "testsrc.mp4"), "format": [{"output": "thumbnail", **fmt}]}
    )
    image = only_image(status)
    picture = image_of(client, image["url"])
    assert picture.size == size and picture.format == pil_format
    assert (image["width"], image["height"]) == size


def test_crop_keeps_aspect_and_scale_stretches(client: QClient, clips: Path):
    source = str(clips / "upright.mp4")  # marker 16x16 in a 64x48 frame
    status = client.run(
        {
            "source": source,
            "format": [
                {"output": "thumbnail", "size": "96x96", "resize_mode": "crop"},
                {"output": "thumbnail", "size": "96x96", "resize_mode": "scale"},
            ],
        }
    )
    assert status["status"] == "completed"
    crop, scale = (image_of(client, i["url"]).convert("L") for i in status["images"])

    # crop: scaled by 2 (48 → 96) and 16 px cut off each side; the marker stays square (32x32)
    # scale: stretched to 96x96, so the marker becomes 24 wide and 32 tall
    def marker(img: Image.Image) -> tuple[int, int]:
        box = img.point(lambda v: 255 if v > 128 else 0).getbbox()
        assert box is not None
        return box[2] - box[0], box[3] - box[1]

    assert marker(crop) == (16, 32)  # 32 wide minus the 16 cropped at the left edge
    assert marker(scale) == (24, 32)


def test_unsupported_output_fails_alone(client: QClient, clips: Path):
    status = client.run(
        {
            "source": str(clips / "testsrc.mp4"),
            "format": [
                {"output": "advanced_hls", "user_tag": "v"},
                {"output": "thumbnail", "time": 0.15, "user_tag": "15"},
                {"output": "thumbnail", "time": 0.5, "user_tag": "50"},
            ],
        }
    )
    assert status["status"] == "completed" and status["error"] == 0
    assert [i["user_tag"] for i in status["images"]] == ["15", "50"]
    assert [i["tag"] for i in status["images"]] == ["image-1-0", "image-2-0"]
    [video] = status["videos"]
    message = "output 'advanced_hls' is not supported yet"
    assert video["error"] == 1 and video["error_description"] == message
    assert status["warnings"][0]["details"] == message


@pytest.mark.parametrize(
    ("source", "description"),
    [
        ("{http}/missing.mp4", "source: HTTP 404 from {http}/missing.mp4"),
        ("{http}/not-video.html", "source is not a media file qthumb can read"),
        ("{clips}/audio.m4a", "source has no video stream (found: audio); thumbnails need a "
         "video track"),
        ("/etc/passwd", "source /etc/passwd: local files must be inside QTHUMB_LOCAL_SOURCE_DIRS"),
        ("file:///etc/hostname", "source /etc/hostname: local files must be inside"),
        ("{clips}/nope.mp4", "source {clips}/nope.mp4: no such file"),
        ("ftp://example.com/a.mp4", "source 'ftp://example.com/a.mp4': unsupported scheme"),
    ],
)  # fmt: skip
def test_task_errors_say_what_failed(
    client: QClient, clips: Path, source_server: str, source: str, description: str
):
    fill = {"http": source_server, "clips": str(clips)}
    status = client.run({"source": source.format(**fill), "format": [{"output": "thumbnail"}]})
    assert status["status"] == "error" and status["error"] == 1
    assert status["error_description"].startswith(description.format(**fill))
    assert "Traceback" not in status["error_description"]


def test_storage_serves_ranges_types_and_cors(client: QClient, clips: Path, qthumb):
    status = client.run({"source": str(clips / "testsrc.mp4"), "format": [{"output": "thumbnail"}]})
    url = only_image(status)["url"]
    whole = client.fetch(url)
    assert whole.headers["content-type"] == "image/png"
    assert whole.headers["access-control-allow-origin"] == "*"
    part = client.fetch(url, Range="bytes=0-7")
    assert part.status_code == 206 and part.content == whole.content[:8] == b"\x89PNG\r\n\x1a\n"
    folder = url.rsplit("/", 1)[0]
    assert client.fetch(folder + "/").status_code == 404
    assert client.fetch(folder + "/missing.png").status_code == 404
    assert client.fetch(f"{qthumb.base_url}/storage/../../etc/passwd").status_code == 404


def test_no_work_files_left(client: QClient, clips: Path, qthumb):
    client.run({"source": str(clips / "testsrc.mp4"), "format": [{"output": "thumbnail"}]})
    client.run({"source": "/etc/passwd", "format": [{"output": "thumbnail"}]})
    work = qthumb.data_dir / "work"
    assert not work.exists() or list(work.iterdir()) == []
