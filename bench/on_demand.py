"""Thumbnails on demand (#14): how long ``GET /v1/thumbnail.jpg`` takes for a new time on a
source the API already holds, next to one bare ``ffmpeg -ss T -i F -frames:v 1`` on the same
file and time, and how long a repeated request takes (answered from memory).

Sources are realistic: film-like noise, x264's default scene-cut GOP with B-frames, so most
times fall between keyframes. ``qthumb serve`` runs on the embedded backend; the frame is made
in the API process either way, so the backend does not change these figures.

    python bench/on_demand.py     # writes its section of bench/RESULTS.md
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

from bench.folder import FOLDER, ensure_clips  # noqa: E402
from bench.load import write_section  # noqa: E402
from bench.run import API_KEY, start_server  # noqa: E402
from bench.sources import WORK  # noqa: E402
from tests.qclient import QClient  # noqa: E402

FULL_HD = WORK / "ondemand_1080p.mp4"
TIMES = [3.7, 11.2, 19.9, 26.4, 33.3, 41.8, 47.1, 52.6, 58.2, 7.9]
REPEATS = 200


def ensure_1080p() -> Path:
    if not FULL_HD.exists():
        print("generating ondemand_1080p.mp4 …", flush=True)
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
             "testsrc2=s=1920x1080:r=30,trim=duration=60,noise=alls=14:allf=t+u,format=yuv420p",
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(FULL_HD)],
            check=True,
        )  # fmt: skip
    return FULL_HD


def bare_ffmpeg(source: Path, t: float, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{t}", "-i", str(source),
                    "-frames:v", "1", "-vf", "scale=320:-2", str(out)], check=True)  # fmt: skip
    return time.perf_counter() - start


def measure(base: str, source: Path) -> dict[str, float]:
    with QClient(base, API_KEY) as client:
        task = client.start({"source": str(source), "format": [{"output": "metadata"}]})
        client.wait(task, timeout=120)
    firsts, bares, repeats = [], [], []
    with httpx.Client(base_url=base, timeout=60) as http, tempfile.TemporaryDirectory() as tmp:
        url = f"/v1/thumbnail.jpg?task_token={task}&width=320&time="
        assert http.get(url + "1").status_code == 200  # the source opened and probed once
        for t in TIMES:
            bares.append(bare_ffmpeg(source, t, Path(tmp) / "f.jpg"))
            start = time.perf_counter()
            answer = http.get(url + str(t))
            firsts.append(time.perf_counter() - start)
            assert answer.status_code == 200, answer.text
        for _ in range(REPEATS):
            start = time.perf_counter()
            assert http.get(url + str(TIMES[0])).status_code == 200
            repeats.append(time.perf_counter() - start)
    repeats.sort()
    return {
        "first": statistics.median(firsts),
        "bare": statistics.median(bares),
        "repeat": statistics.median(repeats),
        "repeat_p95": repeats[int(0.95 * len(repeats))],
    }


def main() -> None:
    sources = {"720p, 60 s (folder benchmark clip03)": ensure_clips()[3],
               "1080p, 60 s": ensure_1080p()}  # fmt: skip
    assert FOLDER.is_relative_to(WORK)
    server = start_server(Path(tempfile.mkdtemp(prefix="qthumb-ondemand-")), workers=1)
    try:
        results = {name: measure(server.base_url, path) for name, path in sources.items()}
    finally:
        server.stop()
    lines = [
        "## Thumbnails on demand (realistic sources)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `bench/on_demand.py`, same run, loopback "
        "HTTP with keep-alive, 320 px JPEG. Sources: film-like noise, x264 default scene-cut "
        f"GOP with B-frames. Medians over {len(TIMES)} times between keyframes (a new time "
        f"each request; the source already fetched and probed) and {REPEATS} repeats.",
        "",
        "| source | new time via qthumb | bare `ffmpeg -ss T -i F -frames:v 1` "
        "| ratio (goal ≤ 1.5) | repeated request, median / p95 (goal ≤ 5 ms) |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {1000 * r['first']:.0f} ms | {1000 * r['bare']:.0f} ms | "
            f"{r['first'] / r['bare']:.2f} | {1000 * r['repeat']:.2f} ms / "
            f"{1000 * r['repeat_p95']:.2f} ms |"
        )
    lines += ["", "<!-- end on-demand -->"]
    write_section("\n".join(lines), lines[0], "<!-- end on-demand -->")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
