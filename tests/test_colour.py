"""Colours: HDR10 (PQ) and HLG sources tone-mapped to SDR BT.709 like ffmpeg's own
zscale+tonemap (not the washed-out grey of a naive conversion), 10-bit sources at their right
levels, and BT.601 / BT.709 / full-range sources decoded to the same colours (colour bars)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from qthumb.workers.media.colour import to_rgb

BARS = "smptehdbars=s=640x360:r=25:d=1"
TO_HDR = ("zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t={trc}:p=bt2020:m=bt2020nc:r=tv:"
          "npl=100,format=yuv420p10le")  # fmt: skip
# ffmpeg's tone mapping, the reference: linear light (100 nits = 1), BT.709 primaries, Hable.
REFERENCE = ("zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=hable:desat=0,"
             "zscale=t=bt709:m=bt709:r=tv,format=yuv420p")  # fmt: skip


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


def first_frame(path: Path) -> av.VideoFrame:
    with av.open(str(path)) as container:
        return next(container.decode(video=0))


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(float)


@pytest.mark.parametrize(("name", "trc"), [("HDR10 (PQ)", "smpte2084"),
                                           ("HLG", "arib-std-b67")])  # fmt: skip
def test_hdr_is_tone_mapped_like_ffmpeg(name: str, trc: str, tmp_path: Path):
    source = tmp_path / "hdr.mp4"
    ffmpeg("-f", "lavfi", "-i", BARS, "-vf", TO_HDR.format(trc=trc), "-c:v", "libx265",
           "-crf", "8", "-x265-params", "log-level=error", "-color_primaries", "bt2020",
           "-color_trc", trc, "-colorspace", "bt2020nc", str(source))  # fmt: skip
    ffmpeg("-i", str(source), "-frames:v", "1", "-vf", REFERENCE, str(tmp_path / "ref.png"))
    ffmpeg("-i", str(source), "-frames:v", "1", str(tmp_path / "naive.png"))
    ours = np.asarray(to_rgb(first_frame(source), 640, 360)).astype(float)
    reference, naive = pixels(tmp_path / "ref.png"), pixels(tmp_path / "naive.png")
    ours_off = np.abs(ours - reference).mean()
    assert ours_off < 2.5, (name, ours_off)  # chroma subsampling and rounding
    assert np.abs(naive - reference).mean() > 4 * ours_off  # what ignoring HDR would give
    # 100 % white of the SDR bars lands where ffmpeg puts it, not at full white
    assert abs(ours[300, 300].mean() - reference[300, 300].mean()) < 4


@pytest.fixture(scope="module")
def bars(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same bars stored four ways: BT.709, BT.601, full range, and 10-bit BT.709."""
    folder = tmp_path_factory.mktemp("bars")
    recipes = {
        "bt709": ("scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
                  ["-colorspace", "bt709", "-color_range", "tv"]),
        "bt601": ("scale=out_color_matrix=bt601:out_range=tv,format=yuv420p",
                  ["-colorspace", "smpte170m", "-color_range", "tv"]),
        "full": ("scale=out_color_matrix=bt709:out_range=pc,format=yuvj420p",
                 ["-colorspace", "bt709", "-color_range", "pc"]),
        "10-bit": ("scale=out_color_matrix=bt709:out_range=tv,format=yuv420p10le",
                   ["-colorspace", "bt709", "-color_range", "tv"]),
    }  # fmt: skip
    made = {}
    for name, (vf, tags) in recipes.items():
        made[name] = folder / f"{name}.mkv"
        codec = ["-c:v", "libx265", "-x265-params", "log-level=error:lossless=1"] if (
            name == "10-bit") else ["-c:v", "libx264", "-qp", "0"]  # fmt: skip
        ffmpeg("-f", "lavfi", "-i", BARS, "-vf", vf, *codec, *tags, str(made[name]))
    return made


def test_matrices_and_ranges_are_respected(bars: dict[str, Path]):
    decoded = {name: np.asarray(to_rgb(first_frame(p), 640, 360)).astype(float)
               for name, p in bars.items()}  # fmt: skip
    top = slice(20, 220)  # the colour bars (the bottom rows hold sub-black steps)
    for name in ("bt709", "full", "10-bit"):
        off = np.abs(decoded[name][top] - decoded["bt601"][top]).mean()
        assert off < 2.5, (name, off)  # 4:2:0 chroma, rounding in the encoders' conversion
    # decoding BT.709 as if it were BT.601 would be visibly off: the test can tell
    with av.open(str(bars["bt709"])) as container:
        frame = next(container.decode(video=0))
    wrong = frame.reformat(format="rgb24", src_colorspace="ITU601").to_ndarray().astype(float)
    assert np.abs(wrong[top] - decoded["bt601"][top]).mean() > 5
