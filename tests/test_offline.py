"""`qthumb thumbnail` / `qthumb thumbnails` over files and folders, no server: the right
frames, the same files and VTT as the API, a broken file among good ones, usage errors."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import FPS
from tests.qclient import QClient
from tests.test_pytest_plugin import ctrl_c_works
from tests.test_s3 import bucket, moto_endpoint, s3_client  # noqa: F401 (fixtures they use)
from tests.test_thumbnail import frame_index

QTHUMB = str(Path(sys.executable).parent / "qthumb")  # the console script, as users start it


def qthumb(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([QTHUMB, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})  # fmt: skip


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


def test_a_folder_of_20_clips_with_a_broken_one(clips: Path, tmp_path: Path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    good = [f"c{i:02d}" for i in range(19)]
    for i, name in enumerate(good):  # different clips, some in a sub-folder (--recursive)
        source = clips / ("testsrc.mp4" if i % 2 else "index.mp4")
        shutil.copy(source, folder / ("sub" if i % 3 == 0 else "") / f"{name}.mp4")
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    (folder / "notes.txt").write_text("not a source")
    done = qthumb("thumbnails", str(folder), "--recursive", "--interval", "1", "--sprite",
                  "--width", "48", "--format", "jpg", "--jobs", "2", "-o", "thumbs", "--json",
                  cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    made = sorted(p.name for p in (tmp_path / "thumbs").iterdir())
    assert made == good  # the broken one has no folder
    for name in good:
        assert sorted(p.name for p in (tmp_path / "thumbs" / name).iterdir()) == [
            "sprite.jpg", "thumbnails.vtt"]  # fmt: skip
    summary = json.loads(done.stdout)["sources"]
    failed = [s for s in summary if s["error"]]
    assert [Path(s["source"]).name for s in failed] == ["broken.mp4"]
    assert "source is not a media file" in failed[0]["error"]
    assert "19 of 20 sources done, 1 failed" in done.stderr
    assert "failed: " in done.stderr and "broken.mp4" in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.startswith("[")]) == 20


def test_json_summary_has_the_api_entries(clips: Path, tmp_path: Path):
    done = qthumb("thumbnails", str(clips / "index.mp4"), "--interval", "2", "--width", "64",
                  "-o", "out", "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(done.stdout)["sources"]
    frames = [i for i in entry["images"] if i["type"] == "frame"]
    assert [i["tag"] for i in entry["images"]][:2] == ["image-0-0", "image-0-1"]
    assert [i["time"] for i in frames] == [0.0, 2.0]
    for image in frames:
        path = Path(image["url"].removeprefix("file://"))
        assert path.is_file() and path.stat().st_size == image["size"]
        with Image.open(path) as picture:
            assert picture.size == (image["width"], image["height"])
            assert abs(frame_index(picture) - round(image["time"] * FPS)) < 0.5


def test_usage_errors_exit_2(tmp_path: Path):
    assert qthumb("thumbnail", "/no/such/file.mp4", "-o", "x.png", cwd=tmp_path).returncode == 2
    assert qthumb("thumbnails", "x.mp4", "-o", "o", cwd=tmp_path).returncode == 2  # no interval


@pytest.mark.parametrize(
    ("name", "fmt", "magic"),
    [("t.jpg", None, b"\xff\xd8\xff"), ("t.JPEG", None, b"\xff\xd8\xff"),
     ("t.webp", None, b"RIFF"), ("t.png", None, b"\x89PNG"), ("t", None, b"\x89PNG"),
     ("t.jpg", "jpg", b"\xff\xd8\xff")],
)  # fmt: skip
def test_the_out_file_suffix_names_the_format(
    clips: Path, tmp_path: Path, name: str, fmt: str | None, magic: bytes
):
    extra = ["--format", fmt] if fmt else []
    done = qthumb("thumbnail", str(clips / "testsrc.mp4"), *extra, "-o", name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / name).read_bytes().startswith(magic)


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--format", "png", "-o", "t.jpg"], "disagrees with the file name t.jpg"),
     (["-o", "t.gif"], "qthumb writes png, jpg, webp, avif, not gif"),
     (["--jobs", "-1", "-o", "t.png"], "--jobs: must be at least 1"),
     (["--jobs", "two", "-o", "t.png"], "--jobs: 'two' is not a whole number"),
     (["--width", "0", "-o", "t.png"], "width must be at least 1")],
)  # fmt: skip
def test_bad_arguments_say_why_and_exit_2(clips: Path, tmp_path: Path, args: list[str], says: str):
    done = qthumb("thumbnail", str(clips / "testsrc.mp4"), *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())


def test_thumbnails_columns_are_checked_as_the_api_checks_them(clips: Path, tmp_path: Path):
    done = qthumb("thumbnails", str(clips / "testsrc.mp4"), "--interval", "1", "--sprite",
                  "--columns", "0", "-o", "out", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "columns must be at least 1" in done.stderr


def test_a_terminal_gets_bars_with_an_eta(clips: Path, tmp_path: Path):
    """stderr on a pseudo-terminal: rich's bars (redrawn with carriage returns, an ETA and
    frame counts), then the same outcome lines and summary as in a pipe."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [QTHUMB, "thumbnails", str(clips / "testsrc.mp4"),
         str(clips / "index.mp4"), "--interval", "0.04", "--width", "32", "-o", "out"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        assert ready, "no output on the terminal within 60 s"
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=30) == 0
    text = seen.decode("utf-8", "replace")
    assert "ETA" in text and "frames" in text and "\x1b[" in text  # drawn, not printed
    assert "[2/2]" in text and "2 of 2 sources done" in text


def test_a_pipe_gets_plain_lines(clips: Path, tmp_path: Path):
    done = qthumb("thumbnail", str(clips / "index.mp4"), str(clips / "testsrc.mp4"), "-o", "t",
                  cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0
    assert "\x1b[" not in done.stderr and "ETA" not in done.stderr
    lines = done.stderr.splitlines()
    assert [line[:5] for line in lines[:2]] == ["[1/2]", "[2/2]"]


def test_ctrl_c_stops_cleanly_and_leaves_only_whole_files(tmp_path: Path):
    long = tmp_path / "long.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=s=640x360:r=25:d=40", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "250", str(long)], check=True, timeout=120)  # fmt: skip
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        os.link(long, folder / f"v{i}.mp4")
    proc = subprocess.Popen(
        [QTHUMB, "thumbnails", str(folder), "--interval", "0.04",
         "--width", "64", "--jobs", "1", "-o", "out"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=ctrl_c_works,
    )  # fmt: skip
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the first source is done: the second is under way
    assert first.startswith("[1/6]"), first
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest
    assert "interrupted" in rest
    out = tmp_path / "out"
    done = sorted(p.name for p in out.iterdir())
    assert "v0" in done and len(done) < 6
    assert not list(out.rglob(".*partial*"))
    for image in out.rglob("*.png"):
        with Image.open(image) as picture:
            picture.load()  # whole files only: a truncated one raises here
    assert (out / "v0" / "thumbnails.vtt").read_text().count("-->") == 1000
    assert not list(Path(tempfile.gettempdir()).glob(f"qthumb-offline-{proc.pid}"))


def test_run_a_whole_query_prints_its_status(
    clips: Path, tmp_path: Path, request: pytest.FixtureRequest
):
    endpoint, name = (request.getfixturevalue(f) for f in ("moto_endpoint", "bucket"))
    query = {"query": {"source": str(clips / "index.mp4"), "format": [
        {"output": "thumbnail", "time": 0.5},
        {"output": "thumbnails", "interval": 1, "sprite": 1, "columns": 2, "user_tag": "seek",
         "destination": {"url": f"s3://{endpoint}/{name}/seek/", "key": "k",
                         "secret": "s"}},
        {"output": "hls_audio"},
    ]}}  # fmt: skip
    (tmp_path / "q.json").write_text(json.dumps(query))
    done = qthumb("run", "q.json", "-o", "results", cwd=tmp_path,
                  env={"QTHUMB_S3_INSECURE_ENDPOINTS": endpoint,
                       "QTHUMB_ALLOWED_NETWORKS": "127.0.0.1/32"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["status"] == "completed" and status["error"] == 0
    images = status["images"]
    thumb = next(i for i in images if i["tag"] == "image-0-0")
    with Image.open(tmp_path / "results" / "0" / Path(thumb["url"]).name) as picture:
        assert abs(frame_index(picture) - 50) < 0.5
    sprite = [i for i in images if i["user_tag"] == "seek"]
    assert {i.get("type") for i in sprite} == {"sprite", "vtt"}
    assert all(i["url"].startswith(f"http://{endpoint}/{name}/seek/") for i in sprite)
    keys = [o["Key"] for o in s3_client(f"http://{endpoint}").list_objects_v2(
        Bucket=name)["Contents"]]  # fmt: skip
    assert sorted(keys) == ["seek/sprite.png", "seek/thumbnails.vtt"]
    assert status["audios"][0]["status"] == "error"  # an output qthumb cannot make yet
    assert "not supported" in status["audios"][0]["error_description"]
    assert status["duration"] == "4.000" and status["source_size"] > 0


def test_run_usage_errors(tmp_path: Path):
    (tmp_path / "bad.json").write_text('{"query": {"source": "x"}}')
    done = qthumb("run", "bad.json", cwd=tmp_path)
    assert done.returncode == 2 and "query.format" in done.stderr
    assert qthumb("run", "missing.json", cwd=tmp_path).returncode == 2


def test_a_command_loads_only_what_local_8bit_sources_need(clips: Path, tmp_path: Path):
    """Start-up is most of a short command's time (bench/RESULTS.md, keyframes_only): a real
    command on a local 8-bit clip loads HTTP, metrics, S3, the terminal bars and NumPy only
    when a source, a terminal or a frame needs them, in the process the console script
    started (no second interpreter). ``-X importtime`` lists every module it loaded."""
    heavy = {"numpy", "httpx", "rich", "prometheus_client", "boto3", "fastapi", "uvicorn"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", QTHUMB, "thumbnails",
         str(clips / "index.mp4"), "--interval", "1", "--sprite", "-o", "out"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
              if line.startswith("import time:")}  # fmt: skip
    assert {"av", "qthumb.workers.commands.offline"} <= loaded, "the command ran in another process"
    assert (tmp_path / "out" / "index" / "thumbnails.vtt").is_file()
    assert sorted(heavy & loaded) == []
