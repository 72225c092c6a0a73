"""podman in a folder of the run's own (runc, capped ulimits: ``../shared/containers.md``) and
the images the container tests use: a Debian base made with mmdebstrap and tagged
``debian:bookworm-slim`` (so ``docker/Dockerfile`` builds unchanged with ``--pull=never``),
qthumb's image and the stand-ins of ``docker/standins``. pip inside a build borrows the host's
CA bundle on the command line only.

The build takes ~3.5 minutes, most of it waiting on apt and PyPI, so it starts in the
background as soon as the session knows a container test will run (``tests/conftest.py``), at a
low CPU priority, while the other tests run; the container tests run last and wait for it.

Under pytest-xdist (``make test`` runs the suite on several processes) the build runs in the
controlling process, once, as soon as a worker's collection names a container test; the
worker that runs the container tests (they are one group: ``--dist loadfile``) waits for the
marker the build leaves in the shared store (``BuiltElsewhere``)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
IMAGE, STANDINS = "localhost/qthumb:ci", "localhost/qthumb-standins:ci"
BASE = "docker.io/library/debian:bookworm-slim"
# What the official debian:*-slim images leave out (debuerreotype's --slimify), kept in the
# base's dpkg configuration as there, so the image's own apt installs leave them out too and
# its size is the one users get: without these the stand-in base is 170 MB, the real one 75.
SLIM = [f"--dpkgopt=path-{rule}" for rule in (
    "exclude=/usr/share/doc/*", "include=/usr/share/doc/*/copyright", "exclude=/usr/share/man/*",
    "exclude=/usr/share/info/*", "exclude=/usr/share/locale/*", "exclude=/usr/share/groff/*",
    "exclude=/usr/share/lintian/*", "exclude=/usr/share/linda/*")]  # fmt: skip
BUILD_SECONDS = 900


@dataclass
class Podman:
    root: Path
    env: dict[str, str]
    kept: bool = False  # a developer's store, kept between runs (QTHUMB_TEST_PODMAN_STORE)
    removed: bool = False

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        done = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {done.stderr[-3000:]}")
        return done.stdout

    def logs(self, name: str) -> str:
        """A container's output: qthumb logs to stderr, which podman keeps apart."""
        done = subprocess.run(["podman", "logs", name], env=self.env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        return done.stdout + done.stderr

    def compose(self, project: Path, *args: str, timeout: float = 600) -> str:
        files = ["-f", str(project / "docker-compose.yml"), "-f",
                 str(project / "docker" / "compose.ci.yml")]  # fmt: skip
        done = subprocess.run(
            [str(BIN / "podman-compose"), *files, *args], cwd=project,
            env={**self.env, "PWD": str(project)}, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    def remove(self) -> None:
        """Every container, and the whole store unless it is a developer's. Once."""
        if self.removed:
            return
        self.removed = True
        subprocess.run(["podman", "rm", "-a", "-f", "-t", "0"], env=self.env,
                       capture_output=True, timeout=120)  # fmt: skip
        if not self.kept:
            subprocess.run(["podman", "system", "reset", "-f"], env=self.env,
                           capture_output=True, timeout=120)  # fmt: skip
            shutil.rmtree(self.root, ignore_errors=True)


def configured(shared: Path | None = None) -> Podman:
    """podman in a store of the run's own, or in ``shared``, one another process builds in."""
    kept = os.environ.get("QTHUMB_TEST_PODMAN_STORE")  # a developer's cache between runs
    if shared is not None:
        root = shared
    else:
        root = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="qthumb-podman-", dir="/tmp"))
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    (root / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
        f'[network]\nnetwork_config_dir = "{root}/networks"\n'
        f'[engine]\nruntime = "runc"\ntmp_dir = "{root}/run/libpod"\n'
    )
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root}/storage"\n'
        f'runroot = "{root}/run/storage"\n'
    )
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(root / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
        "TMPDIR": str(root / "tmp"),
    }
    return Podman(root, env, kept=bool(kept) or shared is not None)


MARKER = "built"  # written in the store when the build ends: empty, or what went wrong


@dataclass
class ImageBuild:
    """The base, the image and the stand-ins, built by a thread of the test session. Every
    command runs niced in a process group of its own, killed if the session ends first."""

    podman: Podman = field(default_factory=configured)
    error: BaseException | None = None
    _thread: threading.Thread | None = None
    _running: subprocess.Popen[str] | None = None
    _stopped: bool = False

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> ImageBuild:
        self._thread = threading.Thread(target=self._build, name="image-build", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def wait(self) -> Podman:
        assert self._thread is not None
        self._thread.join(BUILD_SECONDS)
        if self._thread.is_alive():
            raise AssertionError(f"the images were not built within {BUILD_SECONDS} s")
        if self.error is not None:
            raise AssertionError(f"building the images failed: {self.error}")
        return self.podman

    def stop(self) -> None:
        self._stopped = True
        proc = self._running
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, 9)

    def _step(self, *argv: str) -> None:
        if self._stopped:
            raise RuntimeError("the session ended")
        self._running = subprocess.Popen(
            ["nice", "-n", "10", *argv], env=self.podman.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            _, err = self._running.communicate(timeout=BUILD_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self._running.pid, 9)
            raise
        if self._running.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])}…: {err[-3000:]}")

    def _build(self) -> None:
        try:
            p = self.podman
            cached = subprocess.run(["podman", "image", "exists", BASE], env=p.env).returncode
            if not (p.kept and cached == 0):
                tar = str(p.root / "rootfs.tar")
                self._step("mmdebstrap", "-q", "--variant=minbase", *SLIM, "bookworm", tar)
                self._step("podman", "import", "-q", "--change", 'CMD ["bash"]', tar, BASE)
                Path(tar).unlink()
            ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
            lend: list[str] = []
            if ca:  # this machine's proxy CA, for pip inside the build; never in the Dockerfile
                (p.root / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/host-ca.crt\n")
                lend = ["-v", f"{ca}:/etc/ssl/certs/host-ca.crt:ro",
                        "-v", f"{p.root / 'pip.conf'}:/etc/pip.conf:ro"]  # fmt: skip
            build = ["podman", "build", "-q", "--pull=never", "--network", "host", "--format",
                     "docker", *lend]  # fmt: skip
            self._step(*build, "-t", IMAGE, "-f", str(ROOT / "docker" / "Dockerfile"), str(ROOT))
            standins = ROOT / "docker" / "standins"
            self._step(*build, "-t", STANDINS, "-f", str(standins / "Dockerfile"), str(standins))
        except BaseException as error:  # handed to the test that waits
            self.error = error
        (self.podman.root / MARKER).write_text("" if self.error is None else str(self.error))


@dataclass
class BuiltElsewhere:
    """The build of another process (the xdist controller) in a store shared with it: waited
    for by its marker. The store is that process's to remove."""

    podman: Podman

    def wait(self) -> Podman:
        marker = self.podman.root / MARKER
        late = f"the images were not built within {BUILD_SECONDS} s"
        eventually(marker.exists, BUILD_SECONDS, lambda: late, every=1)
        if error := marker.read_text():
            raise AssertionError(f"building the images failed: {error}")
        return self.podman

    def stop(self) -> None:
        """Nothing of this process runs: ``podman.remove()`` removes its containers only."""
