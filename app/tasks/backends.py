"""The one place that turns settings into engines: task database, queue, and qthumb's own
files. Everything else takes the interfaces (``TaskStore``, ``CallbackOutbox``, ``TaskQueue``,
``Files``) and never names SQLite, PostgreSQL, Redis or S3.

    QTHUMB_DATABASE_URL  ""  -> SQLite in the data dir   | postgresql://…  -> PostgreSQL
    QTHUMB_QUEUE_URL     ""  -> huey on SQLite           | redis://…       -> huey on Redis
    QTHUMB_STORAGE_URL   ""  -> the data dir's folders   | s3://host/b/p   -> an S3 bucket
"""

from __future__ import annotations

from dataclasses import dataclass

from huey import RedisHuey, SqliteHuey

from qthumb.app.settings import Settings
from qthumb.app.storage.files import Files, open_files
from qthumb.app.tasks.outbox import CallbackOutbox
from qthumb.app.tasks.queue import HueyQueue
from qthumb.app.tasks.sql.db import Database, PostgresDatabase, SqliteDatabase
from qthumb.app.tasks.sql.schema import MIGRATIONS
from qthumb.app.tasks.sql.sql_store import SqlTaskStore


@dataclass
class Backends:
    db: Database
    store: SqlTaskStore
    outbox: CallbackOutbox
    queue: HueyQueue
    files: Files

    def check(self) -> dict[str, str]:
        """Each engine reachable ("ok") or what went wrong, for ``/readyz``."""
        probes = {
            "database": lambda: self.db.execute("SELECT 1"),
            "queue": self.queue.depth,
            "storage": self.files.check,
        }
        results: dict[str, str] = {}
        for name, probe in probes.items():
            try:
                probe()
                results[name] = "ok"
            except Exception as exc:  # any failure is the answer, not a crash
                results[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return results

    def describe(self) -> list[str]:
        """One line per engine, for the start banner and the logs."""
        return [
            f"tasks: {self.db.describe()}",
            f"queue: {self.queue.description}",
            f"files: {self.files.describe()}",
        ]


def build_database(settings: Settings) -> Database:
    """The task database, its schema brought up to date (once a process: store and outbox
    share it)."""
    db: Database
    if settings.database_url:
        db = PostgresDatabase(settings.database_url)
    else:
        db = SqliteDatabase(settings.data_dir / "qthumb.db")
    db.migrate(MIGRATIONS[db.dialect])
    return db


def build_queue(settings: Settings) -> HueyQueue:
    # results=False: outcomes live in the task store, not in huey's result store.
    if settings.queue_url:
        huey = RedisHuey(name="qthumb", url=settings.queue_url, results=False)
        return HueyQueue(huey, f"Redis {_without_password(settings.queue_url)}")
    path = settings.data_dir / "queue.db"
    return HueyQueue(
        SqliteHuey(name="qthumb", filename=str(path), results=False, timeout=30),
        f"SQLite {path}",
    )


def build_files(settings: Settings) -> Files:
    return open_files(settings)


def build(settings: Settings) -> Backends:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = build_database(settings)
    return Backends(
        db=db,
        store=SqlTaskStore(db, settings.seed),
        outbox=CallbackOutbox(db, control=settings.control),
        queue=build_queue(settings),
        files=build_files(settings),
    )


def _without_password(url: str) -> str:
    head, _, rest = url.partition("://")
    return f"{head}://{rest.rsplit('@', 1)[-1]}"
