"""The image and the compose stack, built and run for real with podman (no Docker daemon and no
registry here: ``../shared/containers.md``). A Debian base made with mmdebstrap is tagged
``debian:bookworm-slim`` so ``docker/Dockerfile`` builds unchanged with ``--pull=never``; pip
inside the build borrows the host's CA bundle on the command line only.

- the image runs the embedded default and the README's curl session passes against it;
- ``docker-compose.yml`` comes up with its own ``api`` and ``worker`` services and stand-ins
  for the official server images (``docker/compose.ci.yml``), ``worker`` scaled to 3; the worker
  running a long task (an mp4 encode) among 30 others is killed, the task is queued again,
  and all 31 end with the right results;
- hadolint and ``docker compose config -q`` pass on every file;
- ``QthumbContainer`` (``app/testcontainer.py``) starts the image through podman's
  Docker-compatible API, as testcontainers does against Docker.

They run last in the session: the images are built in the background from its start.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from PIL import Image

from tests.conftest import IMAGE_BUILD, eventually, ffmpeg
from tests.podman_images import BIN, IMAGE, ImageBuild, Podman
from tests.qclient import QClient
from tests.test_docs import README, code_blocks
from tests.test_sdks import make_client

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_BIN = next(Path(sys.prefix).glob("lib/python3*/site-packages/compose/docker-compose"))
# Building the base, the image and the stand-ins takes ~3.5 minutes on 2 cores.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def podman(request: pytest.FixtureRequest) -> Iterator[Podman]:
    """podman with the base, the qthumb image and the stand-ins built (in the background since
    the session started, see ``tests/podman_images.py``). The store is removed at the end."""
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: `make test` installs it")
    build = request.config.stash.get(IMAGE_BUILD, None) or ImageBuild().start()
    try:
        yield build.wait()
    finally:
        build.stop()
        build.podman.remove()


def test_the_image_is_lean_enough_and_runs_as_a_user(podman: Podman):
    size = int(podman.run("image", "inspect", IMAGE, "--format", "{{.Size}}").strip())
    print(f"image size: {size / 1e6:.0f} MB")
    # 1.1-1.2 GB with Debian's ffmpeg package, 608 MB with imageio-ffmpeg's static build (169 MB
    # of it); the video outputs are now encoded through PyAV's own libraries
    assert size < 450_000_000
    inspected = json.loads(podman.run("image", "inspect", IMAGE))[0]
    assert inspected["Config"]["User"] == "10001"
    health = inspected.get("Healthcheck") or inspected["Config"].get("Healthcheck")
    assert health["Test"][-4:] == ["python3", "-I", "-m", "qthumb.app.process.healthcheck"], (
        inspected
    )
    # no ffmpeg program at all: the mp4/webm/gif outputs are encoded by PyAV's own FFmpeg, which
    # has every encoder and filter they use
    found = podman.run("run", "--rm", "--entrypoint", "python3", IMAGE, "-I", "-c",
                       "import shutil, av, av.filter; print(shutil.which('ffmpeg'));"
                       "print(*sorted(av.codecs_available));"
                       "print(*av.filter.filters_available)")  # fmt: skip
    on_path, encoders, filters = found.splitlines()
    assert on_path == "None", found
    for name in ("libx264", "aac", "libvpx-vp9", "libopus", "gif", "libwebp"):
        assert name in encoders.split(), name
    assert "palettegen" in filters.split() and "paletteuse" in filters.split()


def test_docker_run_serves_the_readme_session(podman: Podman, tmp_path: Path):
    """`docker run -p 8000:8000 IMAGE` with the checkout's media and data folders mounted:
    the README's curl block runs as pasted (only the port differs)."""
    (tmp_path / "qthumb-data").mkdir()
    (tmp_path / "media").mkdir()
    for folder in ("qthumb-data", "media"):
        os.chown(tmp_path / folder, 10001, 10001)
    port = 8000  # as the README says: docker run -p 8000:8000
    podman.run(
        "run", "-d", "--name", "qthumb-run", "-p", f"127.0.0.1:{port}:8000",
        "-v", f"{tmp_path / 'qthumb-data'}:/data", "-v", f"{tmp_path / 'media'}:{tmp_path}/media",
        "-e", f"QTHUMB_LOCAL_SOURCE_DIRS={tmp_path}/media", IMAGE,
    )  # fmt: skip
    try:
        eventually(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 60,
                 lambda: podman.run("logs", "qthumb-run", check=False))  # fmt: skip
        banner = podman.logs("qthumb-run")
        assert "dev API key" in banner and "API on http://0.0.0.0:8000" in banner
        script = code_blocks(README.read_text())[1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                                capture_output=True, text=True, timeout=180)  # fmt: skip
        assert result.returncode == 0, result.stderr + podman.logs("qthumb-run")
        assert '"status": "completed"' in result.stdout
        with Image.open(tmp_path / "thumbnail.png") as image:
            assert image.size == (320, 180)
        health = podman.run("healthcheck", "run", "qthumb-run", check=False)
        assert "unhealthy" not in health
    finally:
        podman.run("rm", "-f", "-t", "0", "qthumb-run", check=False)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_compose_scales_workers_and_survives_a_killed_one(podman: Podman, tmp_path: Path):
    project = tmp_path / "project"
    (project / "docker").mkdir(parents=True)
    shutil.copy(ROOT / "docker-compose.yml", project / "docker-compose.yml")
    shutil.copy(ROOT / "docker" / "compose.ci.yml", project / "docker" / "compose.ci.yml")
    media, data = project / "media", project / "qthumb-data"
    media.mkdir()
    data.mkdir()
    os.chown(data, 10001, 10001)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=6", "-pix_fmt", "yuv420p",
           str(media / "clip.mp4"))  # fmt: skip
    # a slow one: exact late frames 20 s into one GOP of 720p
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=20", "-c:v", "libx264", "-preset",
           "ultrafast", "-g", "500", "-pix_fmt", "yuv420p", str(media / "slow.mp4"))  # fmt: skip
    # Service by service: podman 4.3 cannot wait for "healthy" or "completed" itself, and
    # podman-compose turns depends_on into --requires, which a finished one-shot breaks.
    podman.compose(project, "up", "-d", "postgres", "redis", "minio")
    try:
        for service in ("postgres", "redis", "minio"):
            eventually(lambda s=service: _healthy(podman, s), 120, lambda s=service: f"{s} down")
        podman.compose(project, "up", "--no-deps", "createbucket")
        code = podman.run("inspect", _container(podman, "createbucket", every=True),
                          "--format", "{{.State.ExitCode}}")  # fmt: skip
        assert code.strip() == "0", podman.run("logs", _container(podman, "createbucket", True))
        podman.compose(project, "up", "-d", "--no-deps", "--scale", "worker=3", "api", "worker")
        base = "http://127.0.0.1:8000"
        eventually(lambda: _answers(f"{base}/readyz"), 120,
                 lambda: podman.run("ps", "-a", check=False))  # fmt: skip
        key = (data / "dev_api_key").read_text().strip()
        with QClient(base, key) as client:
            # one long task (a 720p mp4 encode: 6 s alone here) is the one a worker dies in
            long = client.start({"source": str(media / "slow.mp4"),
                                 "format": [{"output": "mp4", "width": 1280}]})  # fmt: skip
            tasks = {}
            slow = {"output": "thumbnail", "time": 0.97, "width": 160}
            sprite = {"output": "thumbnails", "interval": 2, "sprite": 1, "width": 64}
            for k in range(30):
                source = media / ("slow.mp4" if k % 5 == 0 else "clip.mp4")
                fmt = {**(slow if k % 5 == 0 else sprite), "user_tag": f"t{k}"}
                tasks[client.start({"source": str(source), "format": [fmt]})] = k
            victim = eventually(lambda: _worker_running(podman, client, long), 120,
                              lambda: f"no worker ran {long}")  # fmt: skip
            podman.run("kill", victim)
            statuses = {t: client.wait(t, timeout=300) for t in [long, *tasks]}
        video = statuses[long]["videos"]
        assert statuses[long]["status"] == "completed", statuses[long]["error_description"]
        assert httpx.get(video[0]["url"], timeout=10).content[4:8] == b"ftyp"
        for token, k in tasks.items():
            status = statuses[token]
            assert status["status"] == "completed", (k, status["error_description"])
            images = status["images"]
            assert images[0]["user_tag"] == f"t{k}"
            body = httpx.get(images[0]["url"], timeout=10).content
            with Image.open(io.BytesIO(body)) as picture:
                assert picture.size == (images[0]["width"], images[0]["height"])
        # whichever process swept first (the API or a surviving worker pool) requeued it
        names = podman.run("ps", "-a", "--format", "{{.Names}}").split()
        logs = "".join(podman.logs(n) for n in names if "_api_" in n or "_worker_" in n)
        requeued = logs.count("queued again: its worker ")
        print(f"killed {victim} mid-task; tasks queued again: {requeued}")
        assert f"task {long} queued again: its worker " in logs
    finally:
        podman.compose(project, "down", "-v", "-t", "0")


def _container(podman: Podman, service: str, every: bool = False) -> str:
    names = podman.run("ps", *(["-a"] if every else []), "--format", "{{.Names}}").split()
    return next(n for n in names if f"_{service}_" in n or n.endswith(f"-{service}-1"))


def _worker_running(podman: Podman, client: QClient, task: str) -> str | None:
    """The worker container that runs ``task`` right now, from the claim in its log.

    The task lasts seconds and this is asked every few tenths of one, so the kill that follows
    lands while it runs (a sprite of 0.1 s would be over first).
    """
    if client.post("status", {"task_tokens": task})["statuses"][task]["status"] not in (
        "downloading",
        "encoding",
    ):
        return None
    for name in podman.run("ps", "--format", "{{.Names}}").split():
        if "_worker_" in name and f"task {task} downloading (attempt 1" in podman.logs(name):
            return name
    return None


def test_static_checks_pass():
    for dockerfile in ("docker/Dockerfile", "docker/standins/Dockerfile"):
        done = subprocess.run([str(BIN / "hadolint"), dockerfile], cwd=ROOT,
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stdout
    for files in (["docker-compose.yml"], ["docker-compose.yml", "docker/compose.ci.yml"]):
        args = [a for f in files for a in ("-f", f)]
        env = {**os.environ, "PWD": str(ROOT)}
        done = subprocess.run([str(COMPOSE_BIN), *args, "config", "-q"], cwd=ROOT,
                              capture_output=True, text=True, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr


def _healthy(podman: Podman, service: str) -> bool:
    name = _container(podman, service)
    done = subprocess.run(["podman", "healthcheck", "run", name], env=podman.env,
                          capture_output=True, text=True)  # fmt: skip
    return done.returncode == 0


def test_the_github_recipe_runs_as_written(podman: Podman, tmp_path: Path):
    """docs/ci/github-actions.yml's container: its `docker run` line (the workspace here a
    temporary folder), then the sample project's test through the pytest plugin pointed at it
    with the recipe's own variables."""
    recipe = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions.yml").read_text())
    job = recipe["jobs"]["with-container"]
    steps = {s.get("name"): s for s in job["steps"]}

    def here(text: str) -> str:
        return text.replace("${{ github.workspace }}", str(tmp_path))

    (tmp_path / "tests" / "media").mkdir(parents=True)
    command = shlex.split(here(steps["Start qthumb"]["run"]))
    assert command[:2] == ["docker", "run"] and command[-1] == "qthumb:ci"
    podman.run(*command[1:-1], IMAGE)
    try:
        env = {**os.environ, **{k: here(str(v)) for k, v in job["env"].items()}}
        eventually(lambda: _answers(f"{env['QTHUMB_TEST_URL']}/readyz"), 60,
                 lambda: podman.logs("qthumb"))  # fmt: skip
        shutil.copy(ROOT / "tests" / "sample_project" / "tests" / "test_sprites.py", tmp_path)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-k", "sprite_and_vtt",
             "test_sprites.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + podman.logs("qthumb")[-3000:]
        assert "1 passed" in done.stdout
    finally:
        podman.run("rm", "-f", "-t", "0", "qthumb", check=False)


@pytest.fixture()
def docker_api(podman: Podman, tmp_path: Path) -> Iterator[dict[str, str]]:
    """podman's Docker-compatible API on a socket of the test's own (what testcontainers and
    the Docker SDK talk to), with Ryuk off: no image is pulled, the test removes what it made."""
    sock = tmp_path / "docker.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                               env=podman.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        eventually(sock.exists, 30, lambda: "podman's API socket did not appear")
        yield {"DOCKER_HOST": f"unix://{sock}", "TESTCONTAINERS_RYUK_DISABLED": "true"}
    finally:
        os.killpg(service.pid, 15)
        service.wait(timeout=30)


def test_the_testcontainers_module_runs_a_task(
    podman: Podman, docker_api: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """``QthumbContainer`` (testcontainers-python) on the image the suite built: ready when
    it says so, a thumbnail through Qencode's Python SDK from a mounted folder, its URL served
    to the test, the same tokens under a seed, and nothing left running."""
    from qthumb.app.testcontainer import QthumbContainer

    for name, value in docker_api.items():
        monkeypatch.setenv(name, value)
    media = tmp_path / "media"
    media.mkdir()
    os.chmod(media, 0o755)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=4", "-pix_fmt", "yuv420p",
           str(media / "clip.mp4"))  # fmt: skip
    os.chmod(media / "clip.mp4", 0o644)
    with QthumbContainer(IMAGE, media_dir=media, seed="tc") as qthumb:
        assert httpx.get(f"{qthumb.url}/readyz", timeout=5).status_code == 200
        client = make_client(qthumb.api_key, api_url=qthumb.url)
        task = client.create_task()
        first_token = task.task_token
        thumbnail = {"output": "thumbnail", "time": 0.5}
        task.custom_start({"query": {"source": str(media / "clip.mp4"), "format": [thumbnail]}})
        with QClient(qthumb.url, qthumb.api_key) as poll:
            status = poll.wait(task.task_token, timeout=120)
        assert status["status"] == "completed", status
        image = httpx.get(status["images"][0]["url"], timeout=30)
        with Image.open(io.BytesIO(image.content)) as picture:
            assert picture.size == (320, 180)
        name = qthumb.get_wrapped_container().name
    assert podman.run("ps", "-a", "-q", "--filter", f"name={name}").strip() == ""
    with QthumbContainer(IMAGE, seed="tc") as again:  # its key drawn from the seed too
        assert again.api_key == qthumb.api_key
        assert make_client(again.api_key, api_url=again.url).create_task().task_token == (
            first_token
        )
