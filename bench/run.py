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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sources import SCENARIOS, SOURCES, WORK, Scenario, ensure_sources  # noqa: E402
from bench.tools import Row, ffmpeg_frame, timed, tool_row  # noqa: E402
from tests.conftest import QthumbProcess  # noqa: E402
from tests.qclient import QClient  # noqa: E402

API_KEY = "bench-key-0123456789"


def extraction_row(sc: Scenario) -> Row:
    """qthumb's extraction and composition alone, in a fresh process (for its peak RSS)."""
    code = f"""
import time
from pathlib import Path
from qthumb.app.qencode.query import parse_query
from qthumb.workers.media.probe import probe
from qthumb.workers.outputs.series import make_thumbnails
import tempfile, os
path = Path({str(SOURCES[sc.source].path)!r})
spec = parse_query({{"source": "x", "format": [{sprite_format(sc)!r}]}}).formats[0]
start = time.perf_counter()
info = probe(path)
with tempfile.TemporaryDirectory() as d:
    made = make_thumbnails(path, info, spec, Path(d), lambda f: None, os.cpu_count() or 1,
                          max_frames=10**6, max_pixels=64_000_000)
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


def pool_statuses(data: Path, command: str = "-m qthumb.workers --workers") -> list[list[str]]:
    """``/proc/PID/status`` lines of each process of the server on ``data`` whose command line
    holds ``command`` (default: the consumer and its workers, ``python -m qthumb.workers …``;
    ``-m qthumb.workers``: their encoder children too)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes().decode(errors="replace")
            if command in cmdline and f"QTHUMB_DATA_DIR={data}" in environ:
                found.append((proc / "status").read_text().splitlines())
        except OSError:
            continue
    return found


def status_value(lines: list[str], name: str) -> int:
    return next((int(x.split()[1]) for x in lines if x.startswith(f"{name}:")), 0)


def worker_peak_rss_mb(server: QthumbProcess) -> float:
    """Largest VmHWM among the worker processes (the consumer and its workers)."""
    data = Path(server.env["QTHUMB_DATA_DIR"])
    return max((status_value(s, "VmHWM") / 1024 for s in pool_statuses(data)), default=0.0)


def start_server(
    data: Path, workers: int, command: str = "serve", **settings: str
) -> QthumbProcess:
    """A fresh ``qthumb serve`` (or ``api``: no workers) on an empty data dir, on a port it
    binds itself, local sources from bench/work; ``settings`` are more QTHUMB_ variables."""
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    env = {**os.environ, "QTHUMB_DATA_DIR": str(data), "QTHUMB_API_KEYS": API_KEY,
           "QTHUMB_LOCAL_SOURCE_DIRS": str(WORK), **settings}  # fmt: skip
    server = QthumbProcess(data, env)
    if command == "serve":
        server.serve(workers=workers)
    else:
        server.listen(command)
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


def ffmpeg_startup() -> float:
    """The ffmpeg program's own start-up here: the median of 5 runs that decode one tiny frame."""
    argv = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "color=s=16x16:d=0.04",
        "-frames:v",
        "1",
        "-f",
        "null",
        "-",
    ]
    return sorted(timed([argv])[0] for _ in range(5))[2]


def single_thumbnail_section(data: Path, out: Path) -> str:
    """Issue #2's figure: one `thumbnail` at 0.5 against one bare ffmpeg on the same file; and,
    since ffmpeg's start-up is a large part of so short a run, the same without it."""
    startup = ffmpeg_startup()
    lines = [
        "### Synthetic source: one `thumbnail` at time 0.5 of a 10-minute 1080p file",
        "",
        "qthumb's row runs on a warm worker; ffmpeg's is timed whole, its start-up "
        f"included ({startup:.3f} s here, measured: one tiny lavfi frame), and again "
        "without it (warm).",
        "",
        "| source | qthumb start_encode2 → completed (s) | `ffmpeg -ss T -i F -frames:v 1 "
        "out.png` (s) | ratio | ffmpeg warm (s) | ratio warm |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("1080p_gop2", "1080p_gop10"):
        src = SOURCES[name]
        query = {"source": str(src.path), "format": [{"output": "thumbnail", "time": 0.5}]}
        ours, _ = run_e2e(query, data)
        bare, _ = timed([ffmpeg_frame(src.path, src.seconds / 2, out / "bare.png")])
        warm = max(bare - startup, 0.001)
        lines.append(
            f"| {src.name} | {ours:.2f} | {bare:.2f} | {bare / ours:.2f} "
            f"| {warm:.2f} | {warm / ours:.2f} |"
        )
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
    lines = [f"### Synthetic source: {sc.title}", "",
             "| method | seconds | × qthumb e2e | peak RSS MB | note |",
             "|---|---:|---:|---:|---|"]  # fmt: skip
    for r in rows:
        secs = "–" if r.seconds is None else f"{r.seconds:.2f}"
        ratio = "–" if r.seconds is None else f"{r.seconds / base:.2f}"
        rss = "–" if r.rss_mb is None else f"{r.rss_mb:.0f}"
        lines.append(f"| {r.method} | {secs} | {ratio} | {rss} | {r.note} |")
    return "\n".join(lines) + "\n"


def commit() -> str:
    """The commit measured (with "+" when the work tree differs from it)."""
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "app", "workers", "bench"]
    ).returncode
    return head + ("+" if dirty else "")


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
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `make bench` on commit "
        f"{commit()} "
        f"(children used {usage.ru_utime + usage.ru_stime:.0f} CPU s). Every row of a table ran "
        "on the same file in the same run; \"× qthumb e2e\" divides a row's time by qthumb's "
        "end-to-end time, so 4.0 means qthumb was four times faster. Sprites are 10 columns of "
        "JPEG tiles; the other tools write the same frames as separate JPEGs (vcsi: one sheet). "
        "The other tools' rows are timed whole, process start-up included; qthumb's end-to-end "
        "rows run on a warm worker, its command rows start a process. Each section says "
        "whether its sources are synthetic (clean lavfi patterns, fixed GOPs) or realistic "
        "(noise, scene-cut GOPs, B-frames, HEVC).\n\n"
    )
    # keep the load section that bench/load.py writes
    previous = args.output.read_text() if args.output.exists() else ""
    mark = previous.find("<!-- load:start -->")
    load = previous[mark:] if mark >= 0 else ""
    args.output.write_text(header + "\n".join(sections) + ("\n" + load if load else ""))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
