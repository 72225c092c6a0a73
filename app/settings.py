"""The one settings object. Built once at start (``Settings()``) and passed in; nothing here
reads the environment at import time."""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from qthumb.app.egress import EgressPolicy
from qthumb.app.settings_limits import LimitSettings
from qthumb.app.settings_s3 import S3Settings

CommaList = Annotated[list[str], NoDecode]
# What Qencode's SDKs send and qthumb accepts as an api_key (a longer or shorter one is
# "Bad api_key"); settings refuse a configured key that could never be used.
API_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{12,128}$")
SPARE_WORKERS = 1  # a pool's processes beyond QTHUMB_WORKERS, for keys running less than theirs


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(LimitSettings, S3Settings):
    """Every knob of qthumb. Environment variables carry the ``QTHUMB_`` prefix. The limits on
    what one source, query or request may cost are in ``app.settings_limits``, the S3 ones in
    ``app.settings_s3``."""

    model_config = SettingsConfigDict(env_prefix="QTHUMB_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./qthumb-data"),
        description="SQLite task store, queue, temporary storage and the dev API key live here.",
    )
    database_url: str = Field(
        default="",
        description="Task database: empty for SQLite in the data dir, or "
        "postgresql://user:pass@host:port/db for several machines.",
    )
    queue_url: str = Field(
        default="",
        description="Task queue: empty for huey's SQLite queue in the data dir, or "
        "redis://host:port/db for several machines.",
    )
    storage_url: str = Field(
        default="",
        description="Temporary results and tus uploads: empty for the data dir, or "
        "s3://host[:port]/bucket/prefix for several machines.",
    )
    public_base_url: str = Field(
        default="",
        description="Absolute base of status_url, upload_url and temporary-storage URLs in "
        "this API's replies and callbacks (default: http://HOST:PORT). Workers do not read it.",
    )
    profiles: Path | None = Field(
        default=None,
        description='A JSON file of encoding profiles, {"<profile id>": [<format entry>, …]}'
        " (entries as in a start_encode2 query's format): start_encode with profiles and uri"
        " runs as the equivalent start_encode2. None: start_encode answers error 12.",
    )
    api_keys: CommaList = Field(
        default_factory=list,
        description="Accepted API keys (comma-separated). Empty: a dev key is made and kept.",
    )
    admin_key: str = Field(
        default="",
        description="The operator's key for the control endpoints that reach every API key's"
        " state (POST /_qthumb/reset?all=1); never accepted as an API key, nor an API key in"
        " its place. Empty: nothing reaches beyond the caller's own key.",
    )
    forwarded_allow_ips: CommaList = Field(
        default_factory=list,
        description="Addresses (or CIDRs) of proxies whose X-Forwarded-For and"
        " X-Forwarded-Proto are believed: the client they name is the one whose wrong keys are"
        " counted. Empty: no forwarded header is read (the peer's address counts).",
    )
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Worker processes started by `qthumb serve` / `qthumb worker`.",
    )
    local_source_dirs: CommaList = Field(
        default_factory=list,
        description="Folders that `file://` and absolute-path sources may come from.",
    )
    allowed_networks: CommaList = Field(
        default_factory=list,
        description="CIDRs that sources, callbacks and S3 endpoints may reach besides public "
        "addresses (e.g. 10.0.0.0/8); loopback, private and link-local are refused otherwise.",
    )
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    metrics_host: str = Field(
        default="127.0.0.1", description="Address `qthumb worker` serves /metrics on."
    )
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Port `qthumb worker` serves /metrics on (0: none)."
    )
    log_format: str = Field(
        default="text", pattern="^(text|json)$", description="Log lines as text or JSON."
    )
    port: int = Field(default=8000, ge=0, le=65535, description="Port the API listens on.")

    session_token_ttl: float = Field(
        default=24 * 3600, gt=0, description="Seconds a session token from access_token lives."
    )
    key_attempts_per_minute: int = Field(
        default=10,
        ge=0,
        description="Wrong API keys a client address may send a minute (a burst of as many, "
        "then one every 60/N s) to access_token and the console's sign-in before it is answered "
        "429 with Retry-After; 0: no limit.",
    )
    max_active_tasks_per_key: int = Field(
        default=1000, ge=1, description="Queued and running tasks one API key may have at once."
    )
    tasks_per_key: int = Field(
        default=0,
        ge=0,
        description="Tasks one API key may run at once (0: QTHUMB_WORKERS). The pool keeps one"
        " worker process more than QTHUMB_WORKERS for the other keys, so a key running its"
        " most never makes another key's task wait; a free worker takes the queued task of the"
        " key running the fewest, the oldest first. Tasks held by a fault count for their own"
        " key. With several machines, set it to their workers in all.",
    )
    max_attempts: int = Field(
        default=3, ge=1, description="Times a task is started before a dying worker fails it."
    )
    heartbeat_interval: float = Field(
        default=5.0, gt=0, description="Seconds between a running task's liveness beats."
    )
    task_deadline: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds one attempt at a task may run, download to last upload; past it "
        "the worker process running it is killed by the pool that started it and the task "
        "fails, naming this setting.",
    )
    heartbeat_timeout: float = Field(
        default=60.0, gt=0, description="Seconds without a beat after which a task is re-queued."
    )
    sweep_interval: float = Field(
        default=5.0, gt=0, description="Seconds between the API's recovery sweeps."
    )
    shutdown_timeout: float = Field(
        default=30.0, gt=0, description="Seconds running tasks get to finish on SIGTERM."
    )
    callback_attempts: int = Field(
        default=5, ge=1, description="Tries of one callback delivery (backoff doubles)."
    )
    callback_backoff: float = Field(
        default=1.0, ge=0, description="Seconds before the second callback try."
    )
    callback_timeout: float = Field(default=10.0, gt=0, description="Seconds per callback try.")
    video_timeout: float = Field(
        default=3600.0, gt=0, description="Seconds one mp4/webm output may take to encode."
    )
    journal_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Qencode calls the request journal keeps a key (QTHUMB_CONTROL only;"
        " GET /_qthumb/requests), the oldest out first.",
    )
    control: bool = Field(
        default=False,
        description="Answer the mock's control endpoints under /_qthumb/ (reset, faults, the"
        " request journal, state snapshots) and read qthumb_faults in queries: for test suites"
        " (on in `make run` and the pytest fixture).",
    )
    init_dir: Path | None = Field(
        default=None,
        description="A folder whose state archives (*.tar.gz, from GET /_qthumb/state) and"
        " fault files (*.json) are loaded at start, before /readyz answers ready; tasks already"
        " there are kept. The image reads /etc/qthumb/init.d.",
    )
    seed: str = Field(
        default="",
        max_length=256,
        description="Test-only, with QTHUMB_CONTROL: draw session, task and upload tokens from"
        " this seed, per API key and kind, so two fresh servers given the same calls answer the"
        " same tokens (a reset of a key starts its tokens again). Tokens are then predictable:"
        " never on a shared server.",
    )
    strict: bool = Field(
        default=False,
        description="Refuse a query with a field qthumb does not act on (error 1 naming it);"
        " by default such a field is ignored with a warning naming it, as Qencode ignores"
        " what it does not know.",
    )
    time_scale: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Test-only: multiplies session-token lifetimes, callback retry back-offs and"
        " the stage holds faults ask for (0.01: a hundred times sooner).",
    )
    memory_budget: int = Field(
        default=0,
        ge=0,
        description="Bytes the worker processes (with their encoder children) and the frame"
        " server of one machine may allocate together (RLIMIT_DATA, a share each); past its"
        " share the format being made fails with an error naming this setting. 0: 80% of the"
        " machine's memory (or the container's limit).",
    )
    worker_memory_limit: int = Field(
        default=0,
        ge=0,
        description="Bytes one worker process (with its encoder child) and the frame server may"
        " each allocate, instead of a share of QTHUMB_MEMORY_BUDGET (at least 256 MiB).",
    )
    decode_threads: int = Field(
        default=0,
        ge=0,
        description="Decoding threads one task may use (0: the CPU cores shared among the worker"
        " processes, at least one each).",
    )

    def scaled(self, seconds: float) -> float:
        """A span of time as ``QTHUMB_TIME_SCALE`` makes it (test-only)."""
        return seconds * self.time_scale

    @property
    def per_key(self) -> int:
        """Tasks one API key may run at once (``tasks_per_key``)."""
        return self.tasks_per_key or self.workers

    @property
    def pool_processes(self) -> int:
        """Worker processes of one pool: ``workers``, and one kept for the other keys."""
        return self.workers + SPARE_WORKERS

    @property
    def decode_budget(self) -> int:
        """Threads one worker process decodes with when nothing says how many decode at once:
        readers x decoder threads never pass it, so the worker processes together never ask
        for more than the machine's cores."""
        return self.decode_threads or max(1, (os.cpu_count() or 1) // self.workers)

    def decode_share(self, decoding: int) -> int:
        """Threads one of ``decoding`` tasks decoding at once on this machine may use: the
        cores shared among them (a task alone: every core), or ``decode_threads``."""
        return self.decode_threads or max(1, (os.cpu_count() or 1) // max(1, decoding))

    @field_validator(
        "api_keys",
        "local_source_dirs",
        "s3_insecure_endpoints",
        "allowed_networks",
        "forwarded_allow_ips",
        mode="before",
    )
    @classmethod
    def _commas(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("api_keys")
    @classmethod
    def _usable_keys(cls, value: list[str]) -> list[str]:
        for n, key in enumerate(value, 1):
            if not API_KEY_RE.match(key):  # said without a character of it: keys are secrets
                raise ValueError(
                    f"key {n} of {len(value)} could never be used: an API key is 12-128 "
                    "letters, digits, '_' or '-'"
                )
        return value

    @field_validator("admin_key")
    @classmethod
    def _admin_key(cls, value: str) -> str:
        if value and (len(value) < 16 or not API_KEY_RE.match(value)):
            raise ValueError("the admin key is 16-128 letters, digits, '_' or '-'")
        return value

    @field_validator("allowed_networks", "forwarded_allow_ips")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # ValueError names the bad one
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("QTHUMB_DATABASE_URL must be empty or postgresql://…")
        return value

    @field_validator("queue_url")
    @classmethod
    def _queue_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("QTHUMB_QUEUE_URL must be empty or redis://host:port/db")
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        if value and not value.startswith("s3://"):
            raise ValueError("QTHUMB_STORAGE_URL must be empty or s3://host[:port]/bucket/prefix")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _seed_for_tests_only(self) -> Settings:
        if self.seed and not self.control:
            raise ValueError(
                "QTHUMB_SEED makes every token predictable: it needs QTHUMB_CONTROL=1 (a test"
                " server)"
            )
        return self

    @cached_property
    def egress(self) -> EgressPolicy:
        """Where sources, callbacks and S3 endpoints may connect: built once, with the
        settings (once a process), not again for every request."""
        return EgressPolicy.from_cidrs(self.allowed_networks)

    @property
    def base_url(self) -> str:
        """``public_base_url``, or the address the API listens on (a wildcard address, as in
        a container, becomes 127.0.0.1: what `docker run -p 8000:8000` users reach)."""
        if self.public_base_url:
            return self.public_base_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "[::]", "") else self.host
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{host}:{self.port}"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def dev_key_path(self) -> Path:
        return self.data_dir / "dev_api_key"


def settings_or_exit(**overrides: Any) -> Settings:
    """``Settings(**overrides)`` for a command's start; a value that cannot be used ends the
    process with one line a person can act on (exit 2), not pydantic's traceback."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            where = f"--{name.replace('_', '-')}" if name in overrides else f"QTHUMB_{name.upper()}"
            message = error["msg"].removeprefix("Value error, ").removeprefix(f"{where} ")
            print(f"qthumb: {where}: {message}", file=sys.stderr)
        sys.exit(2)
