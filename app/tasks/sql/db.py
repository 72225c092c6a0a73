"""The task database: SQLite in the data dir (embedded default) or PostgreSQL (several machines).

Both are reached through one small interface, ``Database.execute(sql, params)``, with SQL
written once with ``?`` placeholders: the task store and the callback outbox are the same code
on both engines, and only the few statements that differ (JSON updates, DDL) are chosen by
``dialect``. Every ``execute`` is its own transaction.

The schema is versioned (``app.tasks.sql.schema``): each process applies what is missing when it
starts, under a lock (PostgreSQL: an advisory lock; SQLite: ``BEGIN IMMEDIATE``), so several
processes starting at once apply each migration exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]
_MIGRATION_LOCK = 0x71746875  # "qthu": the advisory lock id every qthumb process agrees on


@dataclass(frozen=True)
class Result:
    rows: Sequence[Mapping[str, Any]]
    rowcount: int

    def first(self) -> Mapping[str, Any] | None:
        return self.rows[0] if self.rows else None


class Database(Protocol):
    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None: ...
    def migrate(self, migrations: Sequence[tuple[int, str]]) -> None: ...
    def describe(self) -> str: ...
    def close(self) -> None: ...


class SqliteDatabase:
    """One connection per thread, kept (opening one costs more than most queries), never
    shared across a fork; WAL and a long busy timeout, so the API and every worker process use
    the file at once."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._use_wal()

    def _use_wal(self) -> None:
        """Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is
        locked" at once (no busy handler) when processes that start together race for it:
        retried until the file is in WAL, for as long as the busy timeout."""
        deadline = time.monotonic() + 30
        while True:
            try:
                with self._connect() as db:
                    if db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                        return
                    db.execute("PRAGMA journal_mode=WAL")
                    return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        pid = os.getpid()
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != pid:
            # A connection made before a fork belongs to the parent: never use it here.
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db, self._local.pid = db, pid
        try:
            yield db
        except sqlite3.Error:
            # A connection left mid-transaction or broken must not serve the next call.
            self._local.db = None
            with contextlib.suppress(sqlite3.Error):
                db.close()
            raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        with self._connect() as db:
            cursor = db.execute(sql, list(params))
            rows = [dict(row) for row in cursor.fetchall()]
            return Result(rows, cursor.rowcount)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with self._connect() as db:
            db.executemany(sql, [list(p) for p in params])

    def migrate(self, migrations: Sequence[tuple[int, str]]) -> None:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # one migrating process at a time
            try:
                db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = db.execute("SELECT max(version) FROM schema_version").fetchone()
                current = row[0] or 0
                for version, script in migrations:
                    if version > current:
                        for statement in _statements(script):
                            db.execute(statement)
                        db.execute("INSERT INTO schema_version VALUES (?)", (version,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def describe(self) -> str:
        return f"SQLite {self.path}"

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None and getattr(self._local, "pid", None) == os.getpid():
            db.close()
        self._local.db = None


class PostgresDatabase:
    """A psycopg connection pool, made in the process that uses it: worker processes are
    forked, and a connection must never cross a fork."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str, max_size: int = 8) -> None:
        self.url = url
        self.max_size = max_size
        self._pool: Any = None
        self._pid = 0
        self._lock = threading.Lock()
        self._async_pool: Any = None  # ``read``'s, on the API's event loop
        self._async_pid = 0

    def _get_pool(self) -> Any:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        if self._pid != os.getpid():
            # Inherited through fork: the pool belongs to the parent (leave it alone), and the
            # lock may be held by a thread that does not exist here.
            self._lock = threading.Lock()
            self._pool = None
            self._pid = os.getpid()
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self.max_size,
                    kwargs={"row_factory": dict_row, "autocommit": True},
                    open=True,
                    timeout=30,
                )
            return self._pool

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        with self._get_pool().connection() as conn:
            cursor = conn.execute(self._sql(sql), list(params))
            rows = list(cursor.fetchall()) if cursor.description else []
            return Result(rows, cursor.rowcount)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with self._get_pool().connection() as conn, conn.cursor() as cursor:
            cursor.executemany(self._sql(sql), [list(p) for p in params])

    def migrate(self, migrations: Sequence[tuple[int, str]]) -> None:
        with self._get_pool().connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) AS v FROM schema_version").fetchone()
            current = (row or {}).get("v") or 0
            for version, script in migrations:
                if version > current:
                    conn.execute(script)
                    conn.execute("INSERT INTO schema_version VALUES (%s)", (version,))

    def describe(self) -> str:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(self.url)
        return (
            f"PostgreSQL {info.get('host', '')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        )

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()

    async def read(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Mapping[str, Any]]:
        """Rows of one read, on the running event loop, through an async pool of its own
        (made on first use, in that loop): a status poll waits on the database without a
        thread of the pool's, where the thread hop and the GIL handoff cost more than the
        query."""
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        pool = self._async_pool
        if pool is None or self._async_pid != os.getpid():
            pool = AsyncConnectionPool(
                self.url,
                min_size=1,
                max_size=self.max_size,
                open=False,
                timeout=30,
                kwargs={"row_factory": dict_row, "autocommit": True},
            )
            await pool.open()
            self._async_pool, self._async_pid = pool, os.getpid()
        async with pool.connection() as conn:
            cursor = await conn.execute(self._sql(sql), list(params))
            return list(await cursor.fetchall())

    async def close_reads(self) -> None:
        """Close the async pool (``read``), in the loop that made it."""
        pool, self._async_pool = self._async_pool, None
        if pool is not None and self._async_pid == os.getpid():
            await pool.close()


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def as_json(value: Any) -> Any:
    """A JSON column's value as Python (SQLite gives text, PostgreSQL's jsonb gives objects)."""
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str | bytes) else value
