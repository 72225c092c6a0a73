"""Real parts only: clips made by ffmpeg lavfi, a real HTTP source server, and qthumb itself
(``qthumb serve``: uvicorn plus huey worker processes) on free loopback ports."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import av
import pytest
import uvicorn

from qthumb.app.children.orphans import qthumb_module
from tests.engines import Engines, postgres_server, redis_server, s3_server
from tests.podman_images import BuiltElsewhere, ImageBuild, configured
from tests.qclient import QClient
from tests.waiting import eventually

T = TypeVar("T")
# A user's project, run through pytester by tests/test_pytest_plugin.py, not collected here.
collect_ignore = ["sample_project"]
pytest_plugins = ["pytester"]

API_KEY = "test-key-0123456789"
OTHER_KEY = "other-key-0123456789"  # a second key, for what one key must not reach of another
FPS = 25
INDEX_FRAMES = 100
INDEX_GOP = 50


IMAGE_BUILD = pytest.StashKey[ImageBuild | BuiltElsewhere]()
WORKER_STORE = "qthumb_podman_store"  # the xdist controller's podman store, told to its workers


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, the controller makes the store its image build will fill (it starts when a
    worker's collection names a container test: ``pytest_xdist_node_collection_finished``)."""
    controller = getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput")
    if controller and shutil.which("podman") is not None:
        config.stash[IMAGE_BUILD] = ImageBuild()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    build = node.config.stash.get(IMAGE_BUILD, None)
    if isinstance(build, ImageBuild):
        node.workerinput[WORKER_STORE] = str(build.podman.root)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    build = node.config.stash.get(IMAGE_BUILD, None)
    wanted = any(i.split("::")[0].endswith("test_containers.py") for i in ids)
    if isinstance(build, ImageBuild) and wanted and not build.started:
        build.start()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The container tests run last, and their images start building now, in the background
    (``tests/podman_images.py``): ~3.5 minutes of apt and PyPI that the other tests hide.
    An xdist worker leaves the build to its controller and waits for it in the shared store."""
    containers = [item for item in items if item.path.name == "test_containers.py"]
    if not containers or config.option.collectonly or shutil.which("podman") is None:
        return
    items[:] = [item for item in items if item.path.name != "test_containers.py"] + containers
    shared = getattr(config, "workerinput", {}).get(WORKER_STORE)
    if shared is not None:
        config.stash[IMAGE_BUILD] = BuiltElsewhere(configured(Path(shared)))
    elif not hasattr(config, "workerinput"):
        config.stash[IMAGE_BUILD] = ImageBuild().start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    build = session.config.stash.get(IMAGE_BUILD, None)
    if build is not None:  # the fixture removes it too; this is for a session that stopped early
        build.stop()
        build.podman.remove()


def free_port() -> int:
    """A port free now, for servers that cannot bind port 0 and report it (SeaweedFS, or a
    port that must stay closed). Racy by nature: prefer ``serve_in_thread`` / ``--port 0``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any) -> Iterator[int]:
    """An ASGI app on 127.0.0.1, on a port the server bound itself (port 0); yields the port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    eventually(lambda: server.started, 10, lambda: "the test server did not start")
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", *args],
        check=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def index_luma(frame: int) -> int:
    """Luma the frame-index clip gives frame ``frame``: 16 + 2·n (limited range, no clipping)."""
    return 16 + 2 * frame


def set_rotation(src: Path, dst: Path, degrees: int) -> None:
    """Remux with a display matrix (Debian's ffmpeg 5.1 has no -display_rotation)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        ostream = out.add_stream_from_template(stream)
        ostream.set_display_rotation(degrees)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = ostream
            out.mux(packet)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("clips")
    # Every frame carries its index as its brightness; fixed 2 s GOPs with B-frames (so frames
    # are reordered and decode times differ from display times), and most times fall between
    # keyframes. qp 2, not lossless: x264 writes no B-frames when lossless.
    ffmpeg(
        "-f", "lavfi",
        "-i", f"color=c=black:s=64x48:r={FPS}:d={INDEX_FRAMES / FPS},"
        "geq=lum='16+2*N':cb=128:cr=128",
        "-c:v", "libx264", "-preset", "veryfast", "-qp", "2", "-bf", "2",
        "-x264-params", f"keyint={INDEX_GOP}:min-keyint={INDEX_GOP}:scenecut=0:b-adapt=0",
        "-pix_fmt", "yuv420p", str(d / "index.mp4"),
    )  # fmt: skip
    # The same frame count and rate, each frame's index written as 8 black or white columns
    # (bit k in column k): read back exactly through GIF palettes and lossy WebP.
    ffmpeg(
        "-f", "lavfi",
        "-i", f"color=c=black:s=64x48:r={FPS}:d={INDEX_FRAMES / FPS},"
        "geq=lum='if(mod(floor(N/pow(2,floor(X/8))),2),235,16)':cb=128:cr=128",
        "-c:v", "libx264", "-preset", "veryfast", "-qp", "2", "-pix_fmt", "yuv420p",
        str(d / "barcode.mp4"),
    )  # fmt: skip
    # A white square in the top-left corner shows where "up" went.
    marker = "color=c=black:s=64x48:r=25:d=2,drawbox=x=0:y=0:w=16:h=16:c=white:t=fill"
    ffmpeg("-f", "lavfi", "-i", marker, "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(d / "upright.mp4"))  # fmt: skip
    set_rotation(d / "upright.mp4", d / "rotated.mp4", 90)
    # 64x48 stored, 4:3 pixels: shown at 16:9 (85x48).
    ffmpeg("-f", "lavfi", "-i", marker, "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-aspect", "16:9", str(d / "anamorphic.mp4"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac",
           str(d / "audio.m4a"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=6", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(d / "testsrc.mp4"))  # fmt: skip
    (d / "not-video.html").write_text("<html><body>hello</body></html>")
    return d


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def source_server(clips: Path) -> Iterator[str]:
    """The clips over plain HTTP, as a user's origin server would serve them."""
    handler = functools.partial(_QuietHandler, directory=str(clips))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QthumbProcess:
    """``qthumb serve`` (or ``api`` / ``worker``) as a child process. The first start binds port
    0 and reports the port it got (``--port-file``), so no port is picked and then raced for;
    restarts reuse it, as a restarted server would."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.env = env
        self.port: int | None = None
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def base_url(self) -> str:
        assert self.port is not None, "not listening yet"
        return f"http://127.0.0.1:{self.port}"

    def start(self, *command: str) -> subprocess.Popen[bytes]:
        with (self.data_dir / f"{command[0]}.log").open("ab") as log:
            proc = subprocess.Popen(
                qthumb_module("app.process.cli", *command),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def listen(self, command: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``serve`` or ``api`` and wait until it accepts connections."""
        port_file = self.data_dir / f"{command}.port"
        port_file.unlink(missing_ok=True)
        port = str(self.port or 0)
        proc = self.start(command, "--port", port, "--port-file", str(port_file), *args)
        try:
            self.port = int(eventually(lambda: _read_port(port_file, proc), 30, self.logs))
            self.wait_ready()
        except (RuntimeError, AssertionError):
            self.stop()
            raise
        return proc

    def serve(self, workers: int = 2) -> None:
        self.listen("serve", "--workers", str(workers))

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.port is not None
        port = self.port

        def accepts() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                return False

        eventually(accepts, timeout, lambda: f"qthumb did not listen on {port}: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.data_dir.glob("*.log"))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in self.procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        self.procs.clear()


def _read_port(path: Path, proc: subprocess.Popen[bytes]) -> int | None:
    if proc.poll() is not None:
        raise RuntimeError(f"qthumb exited with code {proc.returncode} before listening")
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def make_qthumb(tmp: Path, clips: Path, **extra: str) -> QthumbProcess:
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "QTHUMB_DATA_DIR": str(data),
        "QTHUMB_API_KEYS": API_KEY,
        "QTHUMB_LOCAL_SOURCE_DIRS": str(clips),
        "QTHUMB_HEARTBEAT_INTERVAL": "0.5",
        "QTHUMB_HEARTBEAT_TIMEOUT": "3",
        "QTHUMB_SWEEP_INTERVAL": "0.5",
        "QTHUMB_SHUTDOWN_TIMEOUT": "5",
        # the tests' sources, callbacks and S3 servers all listen on loopback
        "QTHUMB_ALLOWED_NETWORKS": "127.0.0.0/8",
        "QTHUMB_KEY_ATTEMPTS_PER_MINUTE": "0",  # tests send wrong keys on purpose; one test counts
        "QTHUMB_CONTROL": "1",  # /_qthumb/ and faults, as the pytest fixture has them
        **extra,
    }
    return QthumbProcess(data, env)


@contextmanager
def serving(tmp: Path, clips: Path, workers: int = 2, **extra: str) -> Iterator[QthumbProcess]:
    """``qthumb serve`` with the test settings (plus ``extra``), stopped whatever happens."""
    server = make_qthumb(tmp, clips, **extra)
    try:
        server.serve(workers=workers)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    """PostgreSQL, Redis and S3 on loopback, started once, only when a test needs them."""
    with postgres_server() as pg, redis_server() as redis, s3_server() as s3:
        yield Engines(pg, redis, s3)


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings that choose the engines: none (SQLite, huey on SQLite, the data dir), or
    PostgreSQL, Redis and a bucket of their own. Tests that take ``qthumb`` run on both."""
    if request.param == "embedded":
        return {}
    engines: Engines = request.getfixturevalue("engines")
    return engines.settings()


@pytest.fixture(scope="module")
def qthumb(
    tmp_path_factory: pytest.TempPathFactory, clips: Path, backend: dict[str, str]
) -> Iterator[QthumbProcess]:
    with serving(tmp_path_factory.mktemp("qthumb"), clips, **backend) as server:
        yield server


@pytest.fixture()
def client(qthumb: QthumbProcess) -> Iterator[QClient]:
    with QClient(qthumb.base_url, API_KEY) as c:
        yield c
