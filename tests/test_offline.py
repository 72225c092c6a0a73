"""`qthumb thumbnail` / `qthumb thumbnails` over files and folders, no server: the right
frames, the same files and VTT as the API, a broken file among good ones, usage errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.conftest import FPS
from tests.qclient import QClient
from tests.test_thumbnail import frame_index


def qthumb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_a_thumbnail_at_a_time_in_seconds_is_that_frame(clips: Path, tmp_path: Path):
    done = qthumb("thumbnail", str(clips / "index.mp4"), "--time", "2.5s", "-o", "f.png",
                  cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "f.png") as image:
        assert abs(frame_index(image) - round(2.5 * FPS)) < 0.5  # frame 62, not a keyframe


def test_the_same_files_and_vtt_as_the_api(client: QClient, clips: Path, tmp_path: Path):
    done = qthumb("thumbnails", str(clips / "testsrc.mp4"), "--interval", "1.5", "--sprite",
                  "--columns", "3", "--width", "80", "-o", "out", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    fmt = {"output": "thumbnails", "interval": 1.5, "sprite": 1, "columns": 3, "width": 80}
    status = client.run({"source": str(clips / "testsrc.mp4"), "format": [fmt]})
    vtt = next(i for i in status["images"] if i["url"].endswith(".vtt"))
    local = tmp_path / "out" / "testsrc"
    assert sorted(p.name for p in local.iterdir()) == ["sprite.png", "thumbnails.vtt"]
    assert (local / "thumbnails.vtt").read_bytes() == client.fetch(vtt["url"]).content


def test_a_folder_with_a_broken_file(clips: Path, tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(clips / "testsrc.mp4", folder / f"{name}.mp4")
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    (folder / "notes.txt").write_text("not a source")
    done = qthumb("thumbnail", str(folder), "--width", "64", "--format", "jpg", "-o", "thumbs",
                  "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert sorted(p.name for p in (tmp_path / "thumbs").iterdir()) == ["a.jpg", "b.jpg", "c.jpg"]
    summary = json.loads(done.stdout)["sources"]
    failed = [s for s in summary if s["error"]]
    assert [Path(s["source"]).name for s in failed] == ["broken.mp4"]
    assert "source is not a media file" in failed[0]["error"]
    assert "3 of 4 sources done, 1 failed" in done.stderr and "broken.mp4" in done.stderr


def test_usage_errors_exit_2(tmp_path: Path):
    assert qthumb("thumbnail", "/no/such/file.mp4", "-o", "x.png", cwd=tmp_path).returncode == 2
    assert qthumb("thumbnails", "x.mp4", "-o", "o", cwd=tmp_path).returncode == 2  # no interval
