"""Previews (#26): what ``smart: 1`` (the best frame of ranked candidates) costs next to a plain
``thumbnail``, what a placeholder adds, and how long a storyboard by URL takes the first time
(made by the frame server) and again (from memory), next to a ``thumbnails`` task with the
same fields, all in the same run.

Sources, labelled in the table:
- synthetic: testsrc2 720p30, 60 s, clean, x264 (a keyframe every 250 frames);
- realistic: 1080p30, 60 s, film-like noise, x264's scene-cut GOP with B-frames
  (``bench/on_demand.py``'s source);
- realistic 4K HEVC: 2160p25, 12 s with noise, x265 (B-pyramid), hvc1.

    python bench/previews.py     # writes its section of bench/RESULTS.md
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import write_section  # noqa: E402
from bench.on_demand import ensure_1080p  # noqa: E402
from bench.run import API_KEY, start_server  # noqa: E402
from bench.sources import WORK  # noqa: E402
from qthumb.app.qencode.query import Placeholder, parse_format  # noqa: E402
from qthumb.workers.media.frames import VideoReader  # noqa: E402
from qthumb.workers.media.placeholders import placeholder  # noqa: E402
from qthumb.workers.media.probe import probe  # noqa: E402
from qthumb.workers.outputs.thumbnail import make_thumbnail  # noqa: E402
from tests.qclient import QClient  # noqa: E402

SYNTHETIC = WORK / "previews_720p_clean.mp4"
UHD = WORK / "previews_4k_hevc.mp4"
FRACTIONS = [0.11, 0.23, 0.37, 0.46, 0.58, 0.69, 0.81, 0.93]
REPEATS = 100
START, END = "<!-- previews:start -->", "<!-- previews:end -->"


def ensure_sources() -> dict[str, Path]:
    if not SYNTHETIC.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=s=1280x720:r=30:d=60", "-c:v", "libx264", "-preset", "veryfast",
                        "-pix_fmt", "yuv420p", str(SYNTHETIC)], check=True)  # fmt: skip
    if not UHD.exists():
        print("generating previews_4k_hevc.mp4 …", flush=True)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=s=3840x2160:r=25:d=12,noise=alls=12:allf=t+u,format=yuv420p",
                        "-c:v", "libx265", "-preset", "ultrafast", "-crf", "26", "-x265-params",
                        "log-level=error:bframes=4:b-pyramid=1", "-tag:v", "hvc1", str(UHD)],
                       check=True)  # fmt: skip
    return {"synthetic 720p, 60 s": SYNTHETIC, "realistic 1080p, 60 s": ensure_1080p(),
            "realistic 4K HEVC, 12 s": UHD}  # fmt: skip


def thumbnail_seconds(source: Path, smart: bool, out: Path) -> list[float]:
    """One thumbnail a fraction, each from a fresh reader (as a task opens one)."""
    info = probe(source, 10**9)
    spent = []
    for fraction in FRACTIONS:
        spec = parse_format({"output": "thumbnail", "time": fraction, "width": 320,
                             "image_format": "jpg", "smart": int(smart)})  # fmt: skip
        start = time.perf_counter()
        with VideoReader(source, info, threads=2) as reader:
            make_thumbnail(reader, spec, out)  # type: ignore[arg-type]
        spent.append(time.perf_counter() - start)
    return spent


def placeholder_ms(source: Path) -> dict[str, float]:
    info = probe(source, 10**9)
    with VideoReader(source, info) as reader:
        image = reader.frame_at(info.duration / 2).to_image(320, 180)
    found = {}
    for kind in Placeholder:
        start = time.perf_counter()
        for _ in range(20):
            placeholder(image, kind)
        found[kind.value] = 1000 * (time.perf_counter() - start) / 20
    return found


def storyboard(base: str, source: Path) -> dict[str, float]:
    fields = {"width": 160, "columns": 10}
    with QClient(base, API_KEY) as client:
        token = client.start({"source": str(source), "format": [{"output": "metadata"}]})
        client.wait(token, timeout=120)
        start = time.perf_counter()
        task = client.start({"source": str(source), "format": [
            {"output": "thumbnails", "sprite": 1, "storyboard": 1, "image_format": "jpg",
             "interval": 1, **fields}]})  # fmt: skip
        client.wait(task, timeout=300)
        as_task = time.perf_counter() - start
    with httpx.Client(base_url=base, timeout=300) as http:
        url = f"/v1/storyboard.vtt?task_token={token}&width=160&columns=10&interval=1"
        start = time.perf_counter()
        assert http.get(url).status_code == 200
        first = time.perf_counter() - start
        sheet = url.replace(".vtt", ".jpg") + "&sheet=0"
        start = time.perf_counter()
        assert http.get(sheet).status_code == 200
        first_sheet = time.perf_counter() - start
        again = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            assert http.get(url).status_code == 200
            again.append(time.perf_counter() - start)
    return {"task": as_task, "first": first, "sheet": first_sheet,
            "again": statistics.median(again)}  # fmt: skip


def main() -> None:
    sources = ensure_sources()
    lines = [
        START,
        "## Previews (#26): the best frame, placeholders, storyboards by URL",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `bench/previews.py`, all in the same run on "
        "this 2-core machine. Sources: synthetic = clean testsrc2 720p30; realistic = film-like "
        "noise with x264's scene-cut GOP and B-frames (1080p30), and x265 4K with a B-pyramid.",
        "",
        "### `smart: 1` next to a plain `thumbnail`",
        "",
        f"One 320 px JPEG at each of {len(FRACTIONS)} times, each from a newly opened reader "
        "(two decoder threads), median seconds. `smart` decodes its 17 grid candidates and the "
        "keyframes within its window, each with the frame after it, in one forward pass: it "
        "decodes forward through the window (a tenth of the source each side, 2 to 10 s), where "
        "a plain thumbnail decodes from the keyframe before its time. Long GOPs with noise "
        "(the realistic 1080p) cost most: every frame of the window is a reference frame.",
        "",
        "| source | plain | smart | smart / plain |",
        "|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in sources.items():
            plain = statistics.median(thumbnail_seconds(path, False, Path(tmp)))
            smart = statistics.median(thumbnail_seconds(path, True, Path(tmp)))
            lines.append(f"| {name} | {plain:.3f} s | {smart:.3f} s | {smart / plain:.1f}x |")
            print(lines[-1], flush=True)
    costs = placeholder_ms(sources["synthetic 720p, 60 s"])
    lines += [
        "",
        "A placeholder of a 320x180 thumbnail (each tile of a series pays it too): "
        + ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in costs.items())
        + ".",
        "",
        "### Storyboards by URL, first and repeated",
        "",
        "`GET /v1/storyboard.vtt?…&width=160&columns=10&interval=1` (a tile a second) on a "
        "source the "
        "API has not opened before, its first sheet just after (made with it), then the VTT "
        f"again (median of {REPEATS}); next to a `thumbnails` task with the same fields, "
        "start_encode2 to completed on one worker.",
        "",
        "| source | task with the same fields | first VTT (makes all) | its first sheet "
        "| repeated VTT |",
        "|---|---|---|---|---|",
    ]
    server = start_server(Path(tempfile.mkdtemp(prefix="qthumb-previews-")), workers=1)
    try:
        for name, path in sources.items():
            r = storyboard(server.base_url, path)
            lines.append(f"| {name} | {r['task']:.2f} s | {r['first']:.2f} s | "
                         f"{1000 * r['sheet']:.1f} ms | {1000 * r['again']:.2f} ms |")  # fmt: skip
            print(lines[-1], flush=True)
    finally:
        server.stop()
    lines.append(END)
    write_section("\n".join(lines), START, END)


if __name__ == "__main__":
    main()
