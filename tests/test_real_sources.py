"""What cameras, phones, browsers and broadcast really produce, generated here with ffmpeg
(never binary files in the repo): H.264 with a B-pyramid and scene cuts, HEVC 8- and 10-bit,
VP9 (with hidden alt-ref frames), AV1, ProRes, MPEG-TS starting at a large PTS and wrapping
past 2^33, MKV written to a pipe (no cues, no duration), open GOPs, VFR, interlaced, and phone
rotations with non-square pixels. ``thumbnail`` and ``thumbnails`` must give the exact frame
for every one, upright and at the display aspect.

Each index clip carries its frame number as the brightness of its top half (16 + 2n); its
bottom half is moving texture with per-pixel noise, so encoders work as on real pictures.
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from qthumb.app.qencode.query import parse_query
from qthumb.app.settings import Settings
from qthumb.app.storage.files import open_files
from qthumb.app.tasks.results import Results
from qthumb.workers.tasks.pipeline import run_query
from qthumb.workers.tasks.storage import folder_storage
from tests.conftest import set_rotation

FPS = 25
FRAMES = 100
INDEX = (
    f"color=c=black:s=192x128:r={FPS}:d={FRAMES / FPS},"
    "geq=lum='if(lt(Y,H/2),16+2*N,clip(128+50*sin(X/5+N/3)*cos(Y/7)+30*random(1)-15,16,235))'"
    ":cb=128:cr=128,format=yuv420p"  # geq draws in 8 bits whatever the encoder takes next
)
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "8", "-pix_fmt", "yuv420p"]
# name: (ffmpeg output arguments, file name)
RECIPES: dict[str, tuple[list[str], str]] = {
    "h264 B-pyramid, scene cuts": (
        [*X264, "-bf", "3", "-x264-params", "b-pyramid=normal:keyint=60:scenecut=40"], "a.mp4"),
    "hevc 8-bit, open GOP": (
        ["-c:v", "libx265", "-crf", "8", "-tag:v", "hvc1", "-x265-params",
         "log-level=error:keyint=30:bframes=4:open-gop=1"], "b.mp4"),
    "hevc 10-bit": (
        ["-vf", "format=yuv420p10le", "-c:v", "libx265", "-crf", "8", "-x265-params",
         "log-level=error:keyint=30"], "c.mkv"),
    "vp9 webm, alt-ref frames": (
        ["-c:v", "libvpx-vp9", "-crf", "10", "-b:v", "0", "-g", "30", "-auto-alt-ref", "1",
         "-lag-in-frames", "16", "-deadline", "realtime", "-cpu-used", "8"], "d.webm"),
    "av1": (["-c:v", "libsvtav1", "-crf", "4", "-g", "30", "-preset", "12",
             "-svtav1-params", "loglevel=0"], "e.mkv"),
    "prores 422 HQ in mov": (["-c:v", "prores_ks", "-profile:v", "3"], "f.mov"),
    "mpeg-ts at PTS 3600 s": ([*X264, "-g", "25", "-output_ts_offset", "3600"], "g.ts"),
    "mpeg-ts wrapping 2^33": ([*X264, "-g", "25", "-output_ts_offset", "95442"], "h.ts"),
    "h264 open GOP": ([*X264, "-x264-params", "open-gop=1:keyint=25:bframes=3"], "i.mp4"),
    "mkv from a pipe (no cues, no duration)": ([*X264, "-g", "25", "-f", "matroska"], "j.mkv"),
}  # fmt: skip
TIMES = [0.0, 0.52, 1.0, 1.19, 1.97, 2.5, 3.41, 3.99, 9.0]


def ffmpeg(*args: str, stdout: Path | None = None) -> None:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", *args]
    if stdout is None:
        subprocess.run(command, check=True, timeout=180)
        return
    with stdout.open("wb") as out:
        subprocess.run([*command, "pipe:1"], check=True, timeout=180, stdout=out)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("matrix")
    made = {}
    for name, (args, file) in RECIPES.items():
        target = folder / file
        if "matroska" in args:  # written to a pipe, the muxer cannot go back for cues
            ffmpeg("-f", "lavfi", "-i", INDEX, *args, stdout=target)
        else:
            ffmpeg("-f", "lavfi", "-i", INDEX, *args, str(target))
        made[name] = target
    return made


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("data")
    made = Settings(data_dir=data, local_source_dirs=[str(Path(tempfile.gettempdir()).resolve())])
    made.work_dir.mkdir(parents=True, exist_ok=True)
    return made


def run(
    settings: Settings,
    source: Path | None,
    formats: list[dict[str, object]],
    stitch: list[object] | None = None,
) -> Path:
    """The pipeline as a library; each format's files in ``<out>/<index>/``. ``stitch``
    instead of ``source``: the pieces of ``query.stitch``."""
    out = Path(tempfile.mkdtemp(dir=settings.data_dir))
    given = {"stitch": stitch} if stitch is not None else {"source": str(source)}
    query = parse_query({**given, "format": formats})
    with tempfile.TemporaryDirectory(dir=settings.work_dir) as work:
        results = run_query(query, settings, open_files(settings), Path(work),
                            lambda spec, _: folder_storage(out / str(spec.index)))  # fmt: skip
    assert isinstance(results, Results) and not results.failures, results.failures
    return out


def index_of(path: Path) -> float:
    """The frame number the top half's brightness carries (limited-range luma → RGB → L)."""
    with Image.open(path) as image:
        top = image.convert("L").crop((0, 0, image.width, image.height // 2))
        luma = ImageStat.Stat(top).mean[0]
    return (luma * 219 / 255 + 16 - 16) / 2


def expected(t: float) -> int:
    return min(FRAMES - 1, int(t * FPS + 1e-9))


@pytest.mark.parametrize("name", list(RECIPES))
def test_the_exact_frame_from_every_kind_of_source(
    name: str, matrix: dict[str, Path], settings: Settings
):
    formats: list[dict[str, object]] = [
        {"output": "thumbnail", "start_time": t, "time": 0} for t in TIMES
    ]
    formats.append({"output": "thumbnails", "interval": 0.28})
    out = run(settings, matrix[name], formats)
    for i, t in enumerate(TIMES):
        (image,) = (out / str(i)).iterdir()
        assert abs(index_of(image) - expected(t)) < 0.5, (t, index_of(image))
    frames = sorted((out / str(len(TIMES))).glob("thumb_*"))
    assert len(frames) == 15  # 0, 0.28, … 3.92 s: the clip's real length, header or not
    got = [round(index_of(f), 2) for f in frames]
    assert all(abs(g - expected(k * 0.28)) < 0.5 for k, g in enumerate(got)), got


def test_variable_frame_rate(settings: Settings, tmp_path: Path):
    """Every 5 frames, the 2nd and 4th are dropped and the others keep their times: the
    frame at t is the last one kept at or before it."""
    source = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", INDEX + ",select='not(eq(mod(n\\,5)\\,1)+eq(mod(n\\,5)\\,3))'",
           "-fps_mode", "vfr", *X264, str(source))  # fmt: skip
    kept = [n for n in range(FRAMES) if n % 5 not in (1, 3)]
    out = run(settings, source, [{"output": "thumbnails", "interval": 0.12}])
    frames = sorted((out / "0").glob("thumb_*"))
    for k, frame in enumerate(frames):
        want = max(n for n in kept if n <= int(k * 0.12 * FPS + 1e-9))
        assert abs(index_of(frame) - want) < 0.5, (k, index_of(frame), want)


def test_interlaced_stills_are_deinterlaced(settings: Settings, tmp_path: Path):
    """1080i-style: a 50p source woven into 25 fields-pairs a second, white fields over black
    ones. A still shown as stored would be striped; a deinterlaced one is not."""
    source = tmp_path / "interlaced.ts"
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=320x240:r=50:d=2,geq=lum='if(mod(N,2),16,235)'"
           ":cb=128:cr=128,tinterlace=mode=interleave_top,setfield=tff",
           "-c:v", "libx264", "-flags", "+ilme+ildct", "-x264-params", "tff=1", "-crf", "8",
           "-pix_fmt", "yuv420p", str(source))  # fmt: skip
    out = run(settings, source, [{"output": "thumbnail", "time": 0.5}])
    (image,) = (out / "0").iterdir()
    with Image.open(image) as picture:
        rows = [ImageStat.Stat(picture.convert("L").crop((0, y, 320, y + 1))).mean[0]
                for y in range(40, 200)]  # fmt: skip
    stripes = sum(abs(a - b) for a, b in itertools.pairwise(rows)) / (len(rows) - 1)
    assert stripes < 10, stripes  # woven fields differ by ~219 from row to row


@pytest.fixture(scope="module")
def phone_clip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A white square in the top-left corner, stored 96x64 with 4:3 pixels (shown 128x64)."""
    folder = tmp_path_factory.mktemp("phone")
    clip = folder / "upright.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=96x64:r=25:d=2,drawbox=x=0:y=0:w=24:h=16:"
           "c=white:t=fill", *X264, "-aspect", "2:1", str(clip))  # fmt: skip
    yield clip


def corner(image: Image.Image) -> str:
    """Which corner is white."""
    w, h = image.size
    boxes = {"top-left": (0, 0), "top-right": (w - w // 5, 0),
             "bottom-left": (0, h - h // 5), "bottom-right": (w - w // 5, h - h // 5)}  # fmt: skip
    light = {
        name: ImageStat.Stat(image.convert("L").crop((x, y, x + w // 5, y + h // 5))).mean[0]
        for name, (x, y) in boxes.items()
    }
    return max(light, key=lambda k: light[k])


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_phone_rotations_with_non_square_pixels(
    degrees: int, phone_clip: Path, settings: Settings, tmp_path: Path
):
    source = tmp_path / f"rotated{degrees}.mp4"
    set_rotation(phone_clip, source, degrees)
    reference = tmp_path / "reference.png"  # ffmpeg applies the display matrix itself
    ffmpeg("-i", str(source), "-frames:v", "1", str(reference))
    out = run(settings, source, [{"output": "thumbnail", "time": 0.5},
                                 {"output": "thumbnails", "interval": 1}])  # fmt: skip
    (still,) = (out / "0").iterdir()
    with Image.open(still) as image, Image.open(reference) as ref:
        assert image.size == ((64, 128) if degrees in (90, 270) else (128, 64))
        assert corner(image) == corner(ref)
    for frame in (out / "1").glob("thumb_*"):
        with Image.open(frame) as image:
            assert image.size == ((64, 128) if degrees in (90, 270) else (128, 64))
