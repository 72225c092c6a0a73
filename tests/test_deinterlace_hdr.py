"""``deinterlace`` and ``hdr_to_sdr``, acted on: a woven source that does not say it is
interlaced (progressive-coded, as many captures are) has no combing at a moving edge in a
thumbnail, a sprite or an mp4 that asks ``deinterlace: 1``; an HDR10 source's mp4 with
``hdr_to_sdr: 1`` has the colours of FFmpeg's own tone mapping, tagged BT.709. Each test also
shows what the source gives without the field, so it fails if the field is ignored."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from qthumb.app.qencode.query import ignored_fields
from qthumb.app.settings import Settings
from tests.test_colour import BARS, REFERENCE, TO_HDR, pixels
from tests.test_real_sources import X264, ffmpeg, run
from tests.test_real_sources import settings as pipeline_settings

# a white bar 32 px wide crossing a black frame at 400 px/s, 50 frames a second woven into 25
# (each frame's even rows from one moment, its odd rows 20 ms later: 8 px apart)
MOVING_BAR = (
    "color=c=black:s=320x240:r=50:d=2,geq=lum='if(between(X,mod(T*400,288),"
    "mod(T*400,288)+32),235,16)':cb=128:cr=128,tinterlace=mode=interleave_top"
)


settings = pipeline_settings  # the pipeline as a library, as there


def combing(image: Image.Image) -> float:
    """Mean difference between neighbouring rows: the bar spans the frame's height, so a
    progressive picture has ~0 and a woven one ~11 (16 of 320 columns differ by 219)."""
    rows = np.asarray(image.convert("L")).astype(float)
    return float(np.abs(np.diff(rows, axis=0)).mean())


@pytest.fixture(scope="module")
def woven(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("woven") / "woven.mp4"
    ffmpeg("-f", "lavfi", "-i", MOVING_BAR, *X264, str(source))  # not flagged interlaced
    return source


@pytest.mark.parametrize("fmt", [
    {"output": "thumbnail", "time": 0.5, "image_format": "png"},
    {"output": "thumbnails", "interval": 0.5, "sprite": 1, "columns": 4, "image_format": "png"},
])  # fmt: skip
def test_deinterlace_takes_the_fields_apart_in_stills(
    settings: Settings, woven: Path, fmt: dict[str, object]
):
    out = run(settings, woven, [fmt, {**fmt, "deinterlace": 1}])
    (combed,) = [p for p in (out / "0").iterdir() if p.suffix == ".png"]
    (clean,) = [p for p in (out / "1").iterdir() if p.suffix == ".png"]
    with Image.open(combed) as as_stored, Image.open(clean) as deinterlaced:
        assert combing(as_stored) > 8, combing(as_stored)  # the source is combed
        assert combing(deinterlaced) < 1.5, combing(deinterlaced)


def test_deinterlace_takes_the_fields_apart_in_an_mp4(settings: Settings, woven: Path):
    out = run(settings, woven, [{"output": "mp4"}, {"output": "mp4", "deinterlace": 1}])

    def worst(folder: Path) -> float:
        (video,) = folder.iterdir()
        with av.open(str(video)) as container:
            frames = [f.to_image() for f in itertools.islice(container.decode(video=0), 5, 45)]
        return max(combing(f) for f in frames)

    assert worst(out / "0") > 8
    assert worst(out / "1") < 1.5, worst(out / "1")


def test_hdr_to_sdr_tone_maps_an_mp4_as_thumbnails_are(settings: Settings, tmp_path: Path):
    source = tmp_path / "hdr10.mp4"
    ffmpeg("-f", "lavfi", "-i", BARS, "-vf", TO_HDR.format(trc="smpte2084"), "-c:v", "libx265",
           "-crf", "8", "-x265-params", "log-level=error", "-color_primaries", "bt2020",
           "-color_trc", "smpte2084", "-colorspace", "bt2020nc", str(source))  # fmt: skip
    ffmpeg("-i", str(source), "-frames:v", "1", "-vf", REFERENCE, str(tmp_path / "ref.png"))
    reference = pixels(tmp_path / "ref.png")
    mp4 = {"output": "mp4", "size": "640x360", "quality": 10}
    out = run(settings, source, [mp4, {**mp4, "hdr_to_sdr": 1}])

    def first(folder: Path) -> tuple[np.ndarray, int]:
        (video,) = folder.iterdir()
        with av.open(str(video)) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgb24").astype(float), frame.color_trc

    ignored, _ = first(out / "0")
    mapped, trc = first(out / "1")
    off = np.abs(mapped - reference).mean()
    assert off < 4, off  # x264 at CRF 10, chroma subsampling and rounding
    assert np.abs(ignored - reference).mean() > 3 * off  # PQ shown as SDR: washed out
    assert trc == 1  # BT.709, said in the stream


def test_the_fields_are_not_ignored_and_no_effect_ones_are_silent():
    """No "ignored" warning for fields acted on, nor for hdr_to_sdr on images (always SDR)."""
    query = {"source": "/x.mp4", "encoder_version": 2, "format": [
        {"output": "mp4", "deinterlace": 1, "hdr_to_sdr": 1},
        {"output": "mp4", "stream": [{"deinterlace": 1, "hdr_to_sdr": 1}]},
        {"output": "thumbnail", "deinterlace": 1, "hdr_to_sdr": 1},
        {"output": "thumbnails", "interval": 1, "deinterlace": "1", "hdr_to_sdr": 0},
        {"output": "gif", "deinterlace": 1, "hdr_to_sdr": 1},
    ]}  # fmt: skip
    assert ignored_fields(query) == []
