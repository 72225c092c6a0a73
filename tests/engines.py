"""The servers of the distributed backend, started by the tests on 127.0.0.1 from Debian's
packages (PostgreSQL 15, Redis) and PyPI (moto's S3), once a session; each qthumb instance gets
its own database, Redis database and bucket, so instances never see each other's tasks.

PostgreSQL refuses to run as root: as root, it runs as the ``postgres`` user the package
creates, in a folder that user owns (``../shared/infra.md``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.waiting import listens

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_DATABASES = 1000
S3_KEY, S3_SECRET = "qthumb-test", "qthumb-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL 15 cluster on a free port; yields its base URL (no database name)."""
    root = Path(tempfile.mkdtemp(prefix="qthumb-pg-", dir="/tmp"))
    data, sock = root / "data", root / "sock"
    data.mkdir()
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        for p in (data, sock):
            shutil.chown(p, "postgres", "postgres")
    subprocess.run(
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = 0
    for _ in range(5):  # pg_ctl cannot bind port 0: pick one, and pick again if it was taken
        port = _free_port()
        options = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=300 -c synchronous_commit=off")  # fmt: skip
        started = subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(sock / "pg.log"),
                          "-w", "-t", "60", "start", "-o", options]),
            capture_output=True, timeout=120,
        )  # fmt: skip
        if started.returncode == 0:
            break
    else:
        raise RuntimeError(f"PostgreSQL did not start: {(sock / 'pg.log').read_text()[-2000:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """redis-server on a free port, no persistence; yields ``redis://127.0.0.1:PORT``."""
    root = Path(tempfile.mkdtemp(prefix="qthumb-redis-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(5):
            port = _free_port()
            proc = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(root), "--databases", str(REDIS_DATABASES)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            if listens(proc, port, timeout=10):
                break
        else:
            raise RuntimeError("redis-server did not start")
        yield f"redis://127.0.0.1:{port}"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 on a port it bound itself; yields ``127.0.0.1:PORT``."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass
class Engines:
    """The three servers, and a new database / Redis db / bucket for each qthumb instance."""

    postgres: str
    redis: str
    s3: str
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def settings(self) -> dict[str, str]:
        """QTHUMB_ settings for one instance (or for several that share one backend)."""
        import boto3
        import psycopg

        n = next(self._counter)
        with psycopg.connect(f"{self.postgres}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE qthumb_{n}")
        bucket = f"qthumb-{n}"
        boto3.client(
            "s3", endpoint_url=f"http://{self.s3}", aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET, region_name="us-east-1",
        ).create_bucket(Bucket=bucket)  # fmt: skip
        return {
            "QTHUMB_DATABASE_URL": f"{self.postgres}/qthumb_{n}",
            "QTHUMB_QUEUE_URL": f"{self.redis}/{n % REDIS_DATABASES}",
            "QTHUMB_STORAGE_URL": f"s3://{self.s3}/{bucket}/qthumb",
            "QTHUMB_S3_INSECURE_ENDPOINTS": self.s3,
            "QTHUMB_S3_CREDENTIALS": json.dumps({self.s3: {"key": S3_KEY, "secret": S3_SECRET}}),
        }
