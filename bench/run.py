"""qthumb's thumbnail benchmark: ``make bench``.

Generates its own sources (ffmpeg lavfi, fixed GOPs), then times, on the same files in the
same run: qthumb end to end (start_encode2 → completed, local source, through ``qthumb serve``),
qthumb's extraction alone, one ``ffmpeg -ss`` per frame, ffmpeg ``fps=1/N`` over the whole
file, ffmpegthumbnailer (one run per frame), vcsi, and the keyframe-only decode floor. Prints
one Markdown table with ratios against qthumb end to end and peak RSS, and writes it to
``bench/RESULTS.md``. These machines are shared and noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
sys.path.insert(0, str(ROOT))

from tests.conftest import QthumbProcess, free_port  # noqa: E402
from tests.qclient import QClient  # noqa: E402

API_KEY = "bench-key-0123456789"


@dataclass(frozen=True)
class Source:
    name: str
    size: str
    seconds: int
    gop: int  # frames between keyframes, fixed
    preset: str

    @property
    def path(self) -> Path:
        return WORK / self.name


SOURCES = {
    "1080p_gop2": Source("1080p_gop2.mp4", "1920x1080", 600, 50, "veryfast"),
    "1080p_gop10": Source("1080p_gop10.mp4", "1920x1080", 600, 250, "veryfast"),
    "720p_1h": Source("720p_1h.mp4", "1280x720", 3600, 50, "ultrafast"),
    "lowres_3h": Source("lowres_3h.mp4", "320x180", 10800, 50, "ultrafast"),
}


@dataclass(frozen=True)
class Scenario:
    title: str
    source: str
    interval: float
    offset: float  # seconds after 0 of the first frame (start_time)
    width: int
    tools: tuple[str, ...]

    def times(self) -> list[float]:
        seconds = SOURCES[self.source].seconds
        count = int((seconds - self.offset - 1e-9) // self.interval) + 1
        return [self.offset + k * self.interval for k in range(count)]


ALL_TOOLS = ("per_frame", "ffmpegthumbnailer", "vcsi", "fps_filter", "keyframe_floor")
SCENARIOS = [
    Scenario("10-min 1080p, 2 s GOP, 60 frames every 10 s (on keyframes)", "1080p_gop2",
             10, 0, 320, ALL_TOOLS),
    Scenario("10-min 1080p, 2 s GOP, 60 frames every 10 s, 1 s after each keyframe",
             "1080p_gop2", 10, 1, 320, ("per_frame", "ffmpegthumbnailer", "vcsi")),
    Scenario("10-min 1080p, 10 s GOP, 60 frames every 10 s, 5 s after each keyframe",
             "1080p_gop10", 10, 5, 320, ALL_TOOLS),
    Scenario("1-hour 720p, 2 s GOP, 360 frames every 10 s", "720p_1h", 10, 0, 320,
             ("per_frame", "ffmpegthumbnailer", "keyframe_floor")),
    Scenario("3-hour 320x180, 10,800 frames every 1 s, 160x90 tiles", "lowres_3h", 1, 0, 160,
             ("fps_filter", "keyframe_floor")),
]  # fmt: skip


def ensure_sources(names: set[str]) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    for name in sorted(names):
        src = SOURCES[name]
        if src.path.exists():
            continue
        print(f"generating {src.name} ({src.seconds} s, {src.size}) …", flush=True)
        part = src.path.with_suffix(".part.mp4")
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
             "-i", f"testsrc2=s={src.size}:r=25:d={src.seconds}", "-c:v", "libx264",
             "-preset", src.preset, "-x264-params",
             f"keyint={src.gop}:min-keyint={src.gop}:scenecut=0", "-bf", "2",
             "-pix_fmt", "yuv420p", str(part)],
            check=True,
        )  # fmt: skip
        part.rename(src.path)


@dataclass
class Row:
    method: str
    seconds: float | None
    rss_mb: float | None
    note: str = ""


def timed(cmds: list[list[str]]) -> tuple[float, float]:
    """Wall time of running ``cmds`` one after another, and the largest child peak RSS."""
    start = time.perf_counter()
    peak = 0.0
    for cmd in cmds:
        out = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *cmd],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, check=True,
        )  # fmt: skip
        peak = max(peak, float(out.stderr.strip().splitlines()[-1]) / 1024)
    return time.perf_counter() - start, peak


def hms(t: float) -> str:
    """HH:MM:SS (whole seconds: ffmpegthumbnailer reads no fraction; the times here are whole)."""
    assert float(t).is_integer(), t
    s = int(t)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def tool_row(tool: str, sc: Scenario, out: Path) -> Row:
    src = str(SOURCES[sc.source].path)
    times = sc.times()
    scale = f"scale={sc.width}:-2"
    if tool == "per_frame":
        cmds = [["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{t:.3f}", "-i", src,
                 "-frames:v", "1", "-vf", scale, str(out / f"pf{k}.jpg")]
                for k, t in enumerate(times)]  # fmt: skip
        return Row("one `ffmpeg -ss T -frames:v 1` per frame", *timed(cmds))
    if tool == "ffmpegthumbnailer":
        cmds = [["ffmpegthumbnailer", "-i", src, "-o", str(out / f"ft{k}.jpg"), "-t", hms(t),
                 "-s", str(sc.width), "-q", "8"] for k, t in enumerate(times)]  # fmt: skip
        return Row("ffmpegthumbnailer, one run per frame", *timed(cmds))
    if tool == "vcsi":
        cols = 10
        rows = -(-len(times) // cols)
        stamps = ",".join(hms(t) for t in times)
        cmd = [
            str(Path(sys.executable).parent / "vcsi"),
            src,
            "-m",
            stamps,
            "-g",
            f"{cols}x{rows}",
            "-w",
            str(cols * sc.width),
            "-o",
            str(out / "vcsi.jpg"),
        ]
        return Row("vcsi (same timestamps, one sheet)", *timed([cmd]))
    if tool == "fps_filter":
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{sc.offset}", "-i", src, "-vf",
               f"fps=1/{sc.interval},{scale}", str(out / "fps%05d.jpg")]  # fmt: skip
        return Row(f"ffmpeg `fps=1/{sc.interval:g}` over the whole file", *timed([cmd]))
    if tool == "keyframe_floor":
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-skip_frame", "nokey", "-i", src, "-an",
               "-f", "null", "-"]  # fmt: skip
        return Row("floor: decode every keyframe, nothing else", *timed([cmd]))
    raise ValueError(tool)


def extraction_row(sc: Scenario) -> Row:
    """qthumb's extraction and composition alone, in a fresh process (for its peak RSS)."""
    code = f"""
import time
from pathlib import Path
from app.query import parse_query
from workers.probe import probe
from workers.series import make_thumbnails
import tempfile, os
path = Path({str(SOURCES[sc.source].path)!r})
spec = parse_query({{"source": "x", "format": [{sprite_format(sc)!r}]}}).formats[0]
start = time.perf_counter()
info = probe(path)
with tempfile.TemporaryDirectory() as d:
    made = make_thumbnails(path, info, spec, Path(d), lambda f: None, os.cpu_count() or 1)
print(time.perf_counter() - start)
"""
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-c", code],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    seconds = float(out.stdout.strip().splitlines()[-1])
    rss = float(out.stderr.strip().splitlines()[-1]) / 1024
    return Row("qthumb extraction + sprite + VTT alone (in-process)", seconds, rss)


def sprite_format(sc: Scenario, keyframes_only: bool = False) -> dict[str, object]:
    fmt: dict[str, object] = {
        "output": "thumbnails",
        "interval": sc.interval,
        "sprite": 1,
        "columns": 10,
        "width": sc.width,
        "image_format": "jpg",
    }
    if sc.offset:
        fmt["start_time"] = sc.offset
    if keyframes_only:
        fmt["keyframes_only"] = 1
    return fmt


def worker_peak_rss_mb(server: QthumbProcess) -> float:
    """Largest VmHWM among the worker processes (children of the consumer)."""
    peak = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "-m workers" not in cmdline or server.env["QTHUMB_DATA_DIR"] not in (
                (proc / "environ").read_bytes().decode(errors="replace")
            ):
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return peak


def start_server(data: Path, workers: int) -> QthumbProcess:
    """A fresh ``qthumb serve`` on an empty data dir, local sources from bench/work."""
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    port = free_port()
    env = {**os.environ, "QTHUMB_DATA_DIR": str(data), "QTHUMB_API_KEYS": API_KEY,
           "QTHUMB_LOCAL_SOURCE_DIRS": str(WORK),
           "QTHUMB_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    server = QthumbProcess(data, env, port)
    server.serve(workers=workers)
    return server


def run_e2e(query: dict[str, object], data: Path) -> tuple[float, float]:
    """start_encode2 → completed through a fresh ``qthumb serve``; seconds and worker peak RSS."""
    server = start_server(data, workers=1)
    try:
        with QClient(server.base_url, API_KEY) as client:
            # Warm up: the first task would also measure the worker pool booting (imports).
            warm = client.start({"source": query["source"], "format": [{"output": "thumbnail"}]})
            client.wait(warm, timeout=120)
            task = client.new_task()
            form = {"task_token": task, "query": json.dumps({"query": query})}
            start = time.time()
            assert client.post("start_encode2", form)["error"] == 0
            # Poll gently (a client polling every few ms takes CPU from the workers on 2
            # cores); the end time is the one the worker recorded, on the same clock.
            while (status := client.status(task))["status"] not in ("completed", "error"):
                if time.time() - start > 1800:
                    still = status["status"]
                    raise RuntimeError(f"task still {still} after 30 min: {server.logs()}")
                time.sleep(0.25)
            assert status["status"] == "completed", status
            db = sqlite3.connect(data / "qthumb.db")
            try:
                row = db.execute("SELECT finished_at FROM tasks WHERE token = ?", (task,))
                finished = float(row.fetchone()[0])
            finally:
                db.close()
            return finished - start, worker_peak_rss_mb(server)
    finally:
        server.stop()


def single_thumbnail_section(data: Path, out: Path) -> str:
    """Issue #2's figure: one `thumbnail` at 0.5 against one bare ffmpeg on the same file."""
    lines = ["### One `thumbnail` at time 0.5 of a 10-minute 1080p file", "",
             "| source | qthumb start_encode2 → completed (s) | `ffmpeg -ss T -i F -frames:v 1 "
             "out.png` (s) | ratio |", "|---|---:|---:|---:|"]  # fmt: skip
    for name in ("1080p_gop2", "1080p_gop10"):
        src = SOURCES[name]
        query = {"source": str(src.path), "format": [{"output": "thumbnail", "time": 0.5}]}
        ours, _ = run_e2e(query, data)
        bare, _ = timed(
            [
                [
                    "ffmpeg",
                    "-nostdin",
                    "-v",
                    "error",
                    "-y",
                    "-ss",
                    str(src.seconds / 2),
                    "-i",
                    str(src.path),
                    "-frames:v",
                    "1",
                    str(out / "bare.png"),
                ]
            ]
        )
        lines.append(f"| {src.name} | {ours:.2f} | {bare:.2f} | {bare / ours:.2f} |")
    return "\n".join(lines) + "\n"


def e2e_rows(sc: Scenario, data: Path) -> list[Row]:
    rows = []
    for keyframes_only in (False, True):
        query = {"source": str(SOURCES[sc.source].path),
                 "format": [sprite_format(sc, keyframes_only)]}  # fmt: skip
        seconds, rss = run_e2e(query, data)
        name = (
            "qthumb end to end, `keyframes_only: 1`"
            if keyframes_only
            else ("**qthumb end to end** (start_encode2 → completed)")
        )
        rows.append(Row(name, seconds, rss, "nearest keyframe" if keyframes_only else "exact"))
    return rows


def render_table(sc: Scenario, rows: list[Row]) -> str:
    base = rows[0].seconds or 1.0
    lines = [f"### {sc.title}", "", "| method | seconds | × qthumb e2e | peak RSS MB | note |",
             "|---|---:|---:|---:|---|"]  # fmt: skip
    for r in rows:
        secs = "–" if r.seconds is None else f"{r.seconds:.2f}"
        ratio = "–" if r.seconds is None else f"{r.seconds / base:.2f}"
        rss = "–" if r.rss_mb is None else f"{r.rss_mb:.0f}"
        lines.append(f"| {r.method} | {secs} | {ratio} | {rss} | {r.note} |")
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    import av

    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.platform()}, "
            f"Python {platform.python_version()}, {ffmpeg.splitlines()[0]}, "
            f"PyAV {av.__version__} (its own FFmpeg {av.ffmpeg_version_info})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", type=int, help="scenario numbers (1-based)")
    parser.add_argument("--no-single", action="store_true", help="skip the single thumbnail")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    chosen = [SCENARIOS[i - 1] for i in args.only] if args.only else SCENARIOS
    ensure_sources(
        {sc.source for sc in chosen} | (set() if args.no_single else {"1080p_gop2", "1080p_gop10"})
    )
    sections = []
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        if not args.no_single:
            single = single_thumbnail_section(Path(tmp) / "qthumb-data", Path(tmp))
            print(single, flush=True)
            sections.append(single)
        for sc in chosen:
            print(f"== {sc.title}", flush=True)
            rows = e2e_rows(sc, Path(tmp) / "qthumb-data")
            rows.append(extraction_row(sc))
            for tool in sc.tools:
                out = Path(tmp) / tool
                out.mkdir()
                rows.append(tool_row(tool, sc, out))
                shutil.rmtree(out)
            table = render_table(sc, rows)
            print(table, flush=True)
            sections.append(table)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    header = (
        "# Benchmark results\n\n"
        f"Machine: {machine()}.\n\n"
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `make bench` "
        f"(children used {usage.ru_utime + usage.ru_stime:.0f} CPU s). Every row of a table ran "
        "on the same file in the same run; \"× qthumb e2e\" divides a row's time by qthumb's "
        "end-to-end time, so 4.0 means qthumb was four times faster. Sprites are 10 columns of "
        "JPEG tiles; the other tools write the same frames as separate JPEGs (vcsi: one sheet).\n\n"
    )
    # keep the load section that bench/load.py writes
    previous = args.output.read_text() if args.output.exists() else ""
    mark = previous.find("<!-- load:start -->")
    load = previous[mark:] if mark >= 0 else ""
    args.output.write_text(header + "\n".join(sections) + ("\n" + load if load else ""))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
