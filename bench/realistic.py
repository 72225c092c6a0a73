"""Speed where it is hard (#15): realistic sources, all rows of a table in the same run.

- ``real_1080p_5min.mp4``: 5 minutes of 1080p30, four lavfi patterns in turn (scene cuts),
  film-like noise, x264 veryfast crf 23 with its default GOP (keyint 250, scene cuts, B-frames).
- ``real_4k_hevc.mp4``: 30 s of 2160p25 with noise, x265 (ultrafast, crf 26).

Exact sprites (60 tiles, every 5 s) against vcsi and one ffmpeg a frame; ``keyframes_only``
against ffmpegthumbnailer (one run a frame); one 4K HEVC ``thumbnail`` against a bare ffmpeg
input seek; and qthumb's own decoding of the frames an exact answer needs (PyAV, no pixel
conversion, no encoding), so it shows how close qthumb is where decoding is the bound.

    python bench/realistic.py    # writes its section of bench/RESULTS.md
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import write_section  # noqa: E402
from bench.run import run_e2e  # noqa: E402
from bench.sources import WORK  # noqa: E402
from bench.tools import QTHUMB, VCSI, hms, timed  # noqa: E402

HD = WORK / "real_1080p_5min.mp4"
UHD = WORK / "real_4k_hevc.mp4"
INTERVAL, COUNT, WIDTH = 5, 60, 160
PATTERNS = ("testsrc2", "smptehdbars", "mandelbrot", "rgbtestsrc")


def noisy_1080p(path: Path, seconds: int) -> None:
    """``seconds`` of 1080p30, the four patterns in turn (scene cuts), film-like noise, x264
    veryfast crf 23 with its default GOP (keyint 250, scene cuts, B-frames)."""
    if path.exists():
        return
    print(f"generating {path.name} (a few minutes) …", flush=True)
    part = seconds // len(PATTERNS)
    inputs: list[str] = []
    for p in PATTERNS:
        source = f"{p}=s=1920x1080:r=30" + (
            f",trim=duration={part}" if p == "mandelbrot" else f":d={part}"
        )
        inputs += ["-f", "lavfi", "-i", source]
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex",
                    "[0][1][2][3]concat=n=4:v=1,noise=alls=14:allf=t+u,format=yuv420p",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(path)],
                   check=True)  # fmt: skip


def ensure_sources() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    noisy_1080p(HD, 300)
    if not UHD.exists():
        print("generating real_4k_hevc.mp4 …", flush=True)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=s=3840x2160:r=25:d=30,noise=alls=12:allf=t+u,format=yuv420p",
                        "-c:v", "libx265", "-preset", "ultrafast", "-crf", "26", "-x265-params",
                        "log-level=error", "-tag:v", "hvc1", str(UHD)], check=True)  # fmt: skip


def times() -> list[int]:
    return [k * INTERVAL for k in range(COUNT)]


def qthumb(out: Path, *extra: str) -> list[list[str]]:
    return [[QTHUMB, "thumbnails", str(HD), "--interval",
             str(INTERVAL), "--sprite", "--width", str(WIDTH), "--format", "jpg", "-o", str(out),
             *extra]]  # fmt: skip


def vcsi(out: Path) -> list[list[str]]:
    stamps = ",".join(hms(t) for t in times())
    return [[VCSI, str(HD), "-m", stamps, "-g", "10x6", "-w", str(10 * WIDTH), "-o",
             str(out / "vcsi.jpg")]]  # fmt: skip


def per_frame(out: Path) -> list[list[str]]:
    return [["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", str(t), "-i", str(HD),
             "-frames:v", "1", "-vf", f"scale={WIDTH}:-2", str(out / f"{t}.jpg")]
            for t in times()]  # fmt: skip


def thumbnailer(out: Path) -> list[list[str]]:
    return [["ffmpegthumbnailer", "-i", str(HD), "-o", str(out / f"{t}.jpg"), "-t", hms(t),
             "-s", str(WIDTH), "-q", "8"] for t in times()]  # fmt: skip


def floor_seconds(
    path: Path, targets: list[float], skip_nonref: bool, threads: str = "AUTO"
) -> float:
    """Decode only what exact frames need: from the keyframe before each time to it (far from
    the time, frames nothing refers to are skipped when ``skip_nonref``)."""
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = threads
        tb = stream.time_base
        assert tb is not None
        for t in targets:
            target = (stream.start_time or 0) + int(t / tb)
            container.seek(target, stream=stream, backward=True)
            for frame in container.decode(stream):
                near = target - (frame.pts or 0) < 16 / 30 / tb
                stream.codec_context.skip_frame = (
                    "NONREF" if skip_nonref and not near else "DEFAULT"
                )
                if (frame.pts or 0) >= target:
                    break
            stream.codec_context.skip_frame = "DEFAULT"
    return time.perf_counter() - start


def reader_seconds(path: Path, targets: list[float]) -> float:
    """qthumb's own exact decoding of ``targets`` on one core: ``VideoReader`` with one decoder
    thread, no pixel conversion or encoding. It decodes the reference frames from the keyframe
    before each time (what any exact decoder needs) and every frame in the last 16 before it."""
    from qthumb.workers.media.frames import VideoReader
    from qthumb.workers.media.probe import probe

    info = probe(path)
    start = time.perf_counter()
    with VideoReader(path, info, 1) as reader:
        for _ in reader.frames_at(targets):
            pass
    return time.perf_counter() - start


def keyframe_floor_seconds(path: Path, targets: list[float]) -> float:
    """One core decoding, each alone, only the keyframes the targets fall on (no pixel
    conversion, no encoding): what any keyframe method must at least do."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "NONE"
        tb = stream.time_base
        assert tb is not None
        keys = sorted({e.timestamp for e in stream.index_entries if e.is_keyframe})
        wanted = sorted({max([k for k in keys if k <= int(t / tb)] or keys[:1]) for t in targets})
        start = time.perf_counter()
        for key in wanted:
            container.seek(key, stream=stream, backward=True)
            for packet in container.demux(stream):
                if packet.is_keyframe and (packet.dts or 0) >= key:
                    list(stream.codec_context.decode(packet))
                    list(stream.codec_context.decode(None))
                    break
    return time.perf_counter() - start


def sprite_query(keyframes_only: bool) -> dict[str, object]:
    fmt: dict[str, object] = {"output": "thumbnails", "interval": INTERVAL, "width": WIDTH,
                              "sprite": 1, "image_format": "jpg"}  # fmt: skip
    if keyframes_only:
        fmt["keyframes_only"] = 1
    return {"source": str(HD), "format": [fmt]}


def median_of(measure: Callable[[int], float], runs: int) -> float:
    """The median of ``runs`` measurements (``measure(k)`` is the k-th): one run of a row that
    takes about a second moves by a tenth of it from one run to the next here."""
    return statistics.median(measure(k) for k in range(runs))


def fresh(work: Path, name: str, k: int) -> Path:
    out = work / f"{name}{k}"
    out.mkdir()
    return out


def row(name: str, seconds: float, base: float) -> str:
    return f"| {name} | {seconds:.2f} | {seconds / base:.2f} |"


def main() -> None:
    ensure_sources()
    work = Path(tempfile.mkdtemp(prefix="qthumb-real-"))
    measured: dict[str, float] = {}
    for name, make in (("exact", qthumb), ("vcsi", vcsi), ("per_frame", per_frame),
                       ("keyframes", lambda o: qthumb(o, "--keyframes-only")),
                       ("thumbnailer", thumbnailer)):  # fmt: skip
        runs = 3 if name == "keyframes" else 1  # a row of about a second: median of 3
        measured[name] = median_of(lambda k, n=name, m=make: timed(m(fresh(work, n, k)))[0], runs)
        print(name, f"{measured[name]:.2f} s", flush=True)
    measured["keyframe_floor"], _ = timed(
        [
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-skip_frame",
                "nokey",
                "-i",
                str(HD),
                "-an",
                "-f",
                "null",
                "-",
            ]
        ]
    )
    measured["startup"] = median_of(
        lambda _: timed([[sys.executable, "-c", "import qthumb.workers.commands.offline"]])[0], 3
    )
    targets = [float(t) for t in times()]
    measured["floor"] = floor_seconds(HD, targets, skip_nonref=False)
    measured["floor_skip"] = floor_seconds(HD, targets, skip_nonref=True)
    # one core's decoding of those frames, shared out perfectly over every core: the least
    # any exact method can take on this machine
    cores = os.cpu_count() or 1
    measured["reader_share"] = reader_seconds(HD, targets) / cores
    measured["keyframe_ideal"] = keyframe_floor_seconds(HD, targets) / cores
    # The service: start_encode2 → completed on a warm worker (no process start, no imports).
    measured["exact_api"], _ = run_e2e(sprite_query(False), work / "data")
    measured["keyframes_api"] = median_of(
        lambda _: run_e2e(sprite_query(True), work / "data")[0], 3
    )
    query = {"source": str(UHD), "format": [{"output": "thumbnail", "time": 0.5}]}
    measured["uhd"] = median_of(lambda _: run_e2e(query, work / "data")[0], 3)
    bare = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "15", "-i", str(UHD),
            "-frames:v", "1", str(work / "b.png")]  # fmt: skip
    measured["uhd_bare"] = median_of(lambda _: timed([bare])[0], 3)
    shutil.rmtree(work, ignore_errors=True)
    m = measured
    exact_goal = min(m["vcsi"], m["per_frame"]) / m["exact"]
    lines = [
        "## Realistic sources (#15): noise, scene cuts, B-frames, 4K HEVC",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `bench/realistic.py`, each table in one run, "
        "2 cores. 1080p: 5 minutes of 1080p30, four patterns in turn (scene cuts), film-like "
        "noise, x264 veryfast crf 23, default GOP (keyint 250, scene cuts, B-frames); 60 tiles "
        "every 5 s, 160 px, JPEG. 4K: 30 s of 2160p25 HEVC (x265) with noise. Commands are "
        "timed whole (process start included). Rows of about 2 s or less (the keyframes_only "
        "command and service, the 4K rows, start-up) are the median of 3 runs; the others are "
        "one run.",
        "",
        "### Exact sprite, 60 tiles of the 5-minute 1080p file",
        "",
        "| method | seconds | × qthumb |",
        "|---|---|---|",
        row("qthumb thumbnails --sprite (exact, sheet + VTT)", m["exact"], m["exact"]),
        row(
            "qthumb start_encode2 → completed, same sprite (warm worker)",
            m["exact_api"],
            m["exact"],
        ),
        row("vcsi, same timestamps", m["vcsi"], m["exact"]),
        row("one `ffmpeg -ss T -i F -frames:v 1` a tile (exact)", m["per_frame"], m["exact"]),
        row(
            "plain exact decoding: from the keyframe before each time to it (PyAV, frame threads)",
            m["floor"],
            m["exact"],
        ),
        row(
            "the same, skipping frames nothing refers to far from each time",
            m["floor_skip"],
            m["exact"],
        ),
        row(
            "qthumb's decoding alone on one core, shared perfectly over the cores",
            m["reader_share"],
            m["exact"],
        ),
        "",
        f"qthumb is **{exact_goal:.1f}x** faster than the faster of vcsi and one ffmpeg a "
        f"frame (goal ≥ 3x), {m['exact'] / m['reader_share']:.2f}x its own decoding shared "
        f"perfectly over the cores. 3x the faster tool would be "
        f"{min(m['vcsi'], m['per_frame']) / 3:.1f} s, "
        f"{min(m['vcsi'], m['per_frame']) / 3 / m['reader_share']:.2f}x that share"
        + (
            ": less time than decoding the frames an exact answer needs takes on these cores "
            "(the reference frames from the keyframe before each time; qthumb skips every other "
            "frame until the last 16), so it is out of reach here."
            if min(m["vcsi"], m["per_frame"]) / 3 < m["reader_share"]
            else "."
        ),
        "",
        "### keyframes_only, same file",
        "",
        "| method | seconds | × qthumb command |",
        "|---|---|---|",
        row(
            "qthumb thumbnails --sprite --keyframes-only (a fresh process)",
            m["keyframes"],
            m["keyframes"],
        ),
        row(
            "qthumb start_encode2 → completed, same sprite (warm worker)",
            m["keyframes_api"],
            m["keyframes"],
        ),
        row("ffmpegthumbnailer, one run a tile", m["thumbnailer"], m["keyframes"]),
        row(
            "`ffmpeg -skip_frame nokey` decoding every keyframe of the file",
            m["keyframe_floor"],
            m["keyframes"],
        ),
        row(
            "ideal floor: the keyframes the tiles fall on, decoded on one core, divided by "
            "the cores",
            m["keyframe_ideal"],
            m["keyframes"],
        ),
        row(
            "qthumb's interpreter and imports alone (`import qthumb.workers.commands.offline`)",
            m["startup"],
            m["keyframes"],
        ),
        "",
        f"The command is **{m['thumbnailer'] / m['keyframes']:.1f}x** faster than "
        f"ffmpegthumbnailer and the service (a warm worker) "
        f"**{m['thumbnailer'] / m['keyframes_api']:.1f}x** (goal ≥ 8x, "
        f"{m['thumbnailer'] / 8:.2f} s). Of the command's {m['keyframes']:.2f} s, "
        f"{m['startup']:.2f} s is starting Python and importing PyAV, Pillow and pydantic; "
        f"decoding the keyframes the tiles fall on cannot take less than "
        f"{m['keyframe_ideal']:.2f} s on these cores.",
        "",
        "### One 4K HEVC `thumbnail` at 0.5",
        "",
        "| method | seconds |",
        "|---|---|",
        f"| qthumb start_encode2 → completed (warm worker) | {m['uhd']:.2f} |",
        f"| bare `ffmpeg -ss 15 -i F -frames:v 1 out.png` | {m['uhd_bare']:.2f} |",
        "",
        f"qthumb takes **{m['uhd'] / m['uhd_bare']:.2f}x** a bare ffmpeg input seek (goal ≤ 1.5x).",
        "",
        "<!-- end realistic -->",
    ]
    write_section("\n".join(lines), lines[0], "<!-- end realistic -->")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
