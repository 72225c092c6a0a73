"""What installing qthumb does to someone else's project: the wheel is built from the checkout
(not an editable install) and installed, with the testing page's install line, into a fresh venv
beside a sample project that has `app` and `workers` packages of its own
(tests/sample_project). Its tests run under the three ways people start pytest, and every
process qthumb starts is shown a working directory full of impostor packages.

The fresh venv is filled by uv (a second or so a venv, against pip's ~50 s here) from the same
index and the same requirement strings the testing page gives pip."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ffmpeg

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).parent / "sample_project"
UV = Path(sys.executable).parent / "uv"
GENERIC = {"app", "workers", "tests", "docker", "bench", "docs", "scripts", "src", "lib"}


@dataclass
class Installed:
    venv: Path
    wheel: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        return next((self.venv / "lib").glob("python3*/site-packages"))

    def run(
        self, *argv: str | Path, cwd: Path, timeout: float = 180, tmp: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` in this venv; ``tmp``: its TMPDIR (where qthumb_server() makes its data)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QTHUMB_", "PYTEST_"))}
        env.update(PATH=f"{self.venv / 'bin'}:{env.get('PATH', '')}", VIRTUAL_ENV=str(self.venv))
        if tmp is not None:
            env["TMPDIR"] = str(tmp)
        return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip


def readme_install_line() -> list[str]:
    """The requirements of the testing page's one install line for the suite integration."""
    text = (ROOT / "docs" / "testing.md").read_text()
    section = text.split("## In your test suite", 1)[1]
    line = re.search(r"```sh\n(pip install [^\n]+)\n```", section)
    assert line, "the testing page has no pip install line"
    return shlex.split(line.group(1))[2:]


def tracked_files() -> list[str]:
    """The checkout's files as git knows them: what a clone has, so what a wheel is built of."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [name for name in out.stdout.decode().split("\0") if name]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("packaging")
    src = work / "src"
    for name in tracked_files():
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    dist = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
                    str(src)], check=True, capture_output=True, timeout=300)  # fmt: skip
    (wheel,) = dist.glob("qthumb-*.whl")
    venv = work / "venv"
    subprocess.run([UV, "venv", "-q", "-p", sys.executable, str(venv)], check=True, timeout=120)
    requirements = [
        f"qthumb @ {wheel.as_uri()}" if r.startswith("qthumb @") else r
        for r in readme_install_line()
    ]
    assert any(r.startswith("qthumb @ file:") for r in requirements), requirements
    done = subprocess.run(
        [UV, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *requirements,
         "pytest"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    yield Installed(venv, wheel)


def test_the_wheel_holds_only_qthumb(installed: Installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"qthumb", f"{installed.wheel.name.split('-py3')[0]}.dist-info"}, tops
    assert not any(n.startswith("qthumb/__init__") for n in names)  # a namespace: qthumb.app, …
    # every module of the repository's two halves is in it (a sub-package left out of
    # pyproject.toml's list would be missing here)
    for path in tracked_files():
        if path.startswith(("app/", "workers/")) and path.endswith(".py"):
            assert f"qthumb/{path}" in names, path
    assert "qthumb/app/console/templates/task.html" in names


def test_site_packages_has_no_generic_names(installed: Installed):
    tops = {p.name for p in installed.site_packages.iterdir()}
    assert not tops & GENERIC, tops & GENERIC
    record = next(installed.site_packages.glob("qthumb-*.dist-info")) / "RECORD"
    paths = [line.split(",", 1)[0] for line in record.read_text().splitlines()]
    # what pip wrote for qthumb: its package, its metadata and the console script in bin/
    allowed = ("qthumb/", f"{record.parent.name}/", "../../../bin/qthumb")
    assert all(p.startswith(allowed) for p in paths), [
        p for p in paths if not p.startswith(allowed)
    ]
    entry_points = (record.parent / "entry_points.txt").read_text()
    assert "qthumb = qthumb.app.pytest_plugin" in entry_points


def leftovers(tmp: Path) -> list[str]:
    """Data dirs and processes of qthumb_server() made in ``tmp`` (the run's own TMPDIR: other
    tests running at once make theirs elsewhere), which the fixture should have removed."""
    found = [p.name for p in tmp.glob("qthumb-test-*")]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return found + [line for line in ps.splitlines() if f"{tmp}/qthumb-test-" in line]


def _project(tmp: Path, ini: str = "") -> Path:
    project = tmp / "project"
    shutil.copytree(SAMPLE, project)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "team-project"\nversion = "1"\n\n'
        f'[tool.pytest.ini_options]\naddopts = "-p no:cacheprovider"\n{ini}'
    )
    return project


@pytest.mark.parametrize(
    ("command", "ini"),
    [
        (["pytest"], ""),
        (["python", "-m", "pytest"], ""),
        (["pytest"], 'pythonpath = ["."]\n'),
    ],
    ids=["pytest", "python -m pytest", "pythonpath"],
)
def test_a_project_with_its_own_app_and_workers(
    installed: Installed, tmp_path: Path, command: list[str], ini: str
):
    project = _project(tmp_path, ini)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = installed.run(*command, "-q", "--qthumb-workers", "1", "-rf", cwd=project, tmp=tmp)
    out = done.stdout + done.stderr
    # the team's own tests pass, the fixture's sprite test and its error-path tests (faults,
    # reset, callbacks) pass, and the one that sends a bad query fails with qthumb's own words
    assert re.search(r"\b1 failed, 5 passed\b", out), out
    assert "qthumb said: query.format[0].output: unknown output" in out, out
    assert "Error while loading plugin" not in out and "ImportError" not in out, out
    assert leftovers(tmp) == [], "the fixture left a server or its data behind"


IMPOSTOR = "raise ImportError(\"the working directory's {name}/ was imported, not qthumb's\")\n"

START = """
import json, sys, time, httpx
started = time.monotonic()
from qthumb.app.testing import qthumb_server

with qthumb_server(workers=1) as q:
    ready = time.monotonic() - started
    clip = q.media_dir / "clip.mp4"
    clip.write_bytes(open(sys.argv[1], "rb").read())
    token = httpx.post(f"{q.url}/v1/access_token", data={"api_key": q.api_key}).json()["token"]
    task = httpx.post(f"{q.url}/v1/create_task", data={"token": token}).json()["task_token"]
    query = {"source": str(clip), "format": [{"output": "thumbnail", "time": 0.5}]}
    httpx.post(f"{q.url}/v1/start_encode2", data={"task_token": task,
                                                 "query": json.dumps({"query": query})})
    status = q.wait(task)
    frame = httpx.get(f"{q.url}/v1/thumbnail.jpg", params={"task_token": task, "time": "1"},
                      timeout=60)
    print(json.dumps({"ready": ready, "status": status["status"],
                      "error": status["error_description"], "frame": frame.status_code,
                      "type": frame.headers.get("content-type")}))
"""


def test_processes_ignore_the_working_directory(installed: Installed, tmp_path: Path):
    """The console script, ``qthumb serve`` and what it starts (the worker pool, the frame
    server) run qthumb's code from a folder whose ``app``, ``workers`` and ``qthumb`` packages
    would fail any import of them."""
    cwd = tmp_path / "cwd"
    for name in ("app", "workers", "qthumb"):
        (cwd / name).mkdir(parents=True)
        (cwd / name / "__init__.py").write_text(IMPOSTOR.format(name=name))
    clip = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=2", "-pix_fmt", "yuv420p", str(clip))
    offline = installed.run("qthumb", "thumbnail", clip, "--time", "1s", "-o",
                            tmp_path / "poster.png", cwd=cwd)  # fmt: skip
    assert offline.returncode == 0, offline.stderr
    assert (tmp_path / "poster.png").stat().st_size > 0
    script = tmp_path / "elsewhere" / "start.py"
    script.parent.mkdir()
    script.write_text(textwrap.dedent(START))
    done = installed.run(installed.python, script, clip, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed", result
    assert (result["frame"], result["type"]) == (200, "image/jpeg"), result
    print(f"qthumb_server() from a fresh venv: ready in {result['ready']:.2f} s")
