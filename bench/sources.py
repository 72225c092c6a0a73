"""The benchmark's sources (generated with ffmpeg lavfi, fixed GOPs) and its scenarios."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"


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
