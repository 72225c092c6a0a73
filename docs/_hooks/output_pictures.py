"""mkdocs hook: the pictures on the outputs page, made fresh at every build by qthumb itself
(``qthumb run`` on a clip ffmpeg draws), so they always show what this code makes. Written to
``docs/images/made/`` (not kept in git) before the site's files are collected."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent.parent / "images" / "made"
CLIP = "testsrc=s=1280x720:r=25:d=20"  # its frames show their time, large
# file name on the page: the format entry that makes it (one start_encode2 query)
PICTURES: dict[str, dict[str, Any]] = {
    "thumbnail.jpg": {"output": "thumbnail", "time": 0.5, "width": 320, "image_format": "jpg"},
    "crop.jpg": {"output": "thumbnail", "time": 0.5, "width": 180, "height": 180,
                 "resize_mode": "crop", "image_format": "jpg"},
    "pad.jpg": {"output": "thumbnail", "time": 0.5, "width": 180, "height": 180,
                "resize_mode": "pad", "pad_color": "#e0e0e0", "image_format": "jpg"},
    "rotate.jpg": {"output": "thumbnail", "time": 0.5, "width": 180, "rotate": 90,
                   "image_format": "jpg"},
    "sprite.jpg": {"output": "thumbnails", "interval": 2, "sprite": 1, "columns": 5,
                   "width": 128, "image_format": "jpg"},
    "animation.gif": {"output": "gif", "start_time": 4, "duration": 2, "framerate": 8,
                      "width": 240},
}  # fmt: skip


def make_pictures() -> None:
    qthumb = Path(sys.executable).parent / "qthumb"
    with tempfile.TemporaryDirectory() as work:
        clip = Path(work) / "clip.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", CLIP,
                        "-pix_fmt", "yuv420p", str(clip)], check=True, timeout=120)  # fmt: skip
        query = Path(work) / "query.json"
        query.write_text(json.dumps({"query": {"source": str(clip),
                                               "format": list(PICTURES.values())}}))  # fmt: skip
        out = Path(work) / "out"
        subprocess.run([str(qthumb), "run", str(query), "-o", str(out)], check=True,
                       timeout=300, capture_output=True)  # fmt: skip
        if FOLDER.exists():
            shutil.rmtree(FOLDER)
        FOLDER.mkdir(parents=True)
        for index, name in enumerate(PICTURES):
            made = sorted(p for p in (out / str(index)).iterdir() if p.suffix != ".vtt")
            shutil.copy(made[0], FOLDER / name)


def on_pre_build(config: Any) -> None:
    make_pictures()
