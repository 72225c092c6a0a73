"""The task database's schema, as numbered migrations for each engine (``Database.migrate``).

Add a migration by appending ``(next number, script)`` to both lists; never edit one that has
shipped. Version 1 uses ``IF NOT EXISTS`` so that SQLite files made before versioning adopt it.
"""

from __future__ import annotations

from qthumb.app.tasks.sql.db import Dialect

_SQLITE_1 = """
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    api_key TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    token TEXT PRIMARY KEY,
    api_key TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    percent REAL NOT NULL DEFAULT 0,
    error_description TEXT,
    query TEXT,
    payload TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    heartbeat_at REAL,
    queued_at REAL,
    finished_at REAL,
    duration REAL,
    source_size REAL,
    outputs TEXT NOT NULL DEFAULT '{}',
    storage_purged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks(status);
CREATE INDEX IF NOT EXISTS tasks_key_status ON tasks(api_key, status);
CREATE TABLE IF NOT EXISTS uploads (
    uuid TEXT PRIMARY KEY,
    task_token TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL,
    event TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    claimed_until REAL,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS callbacks_pending ON callbacks(done, token, id)
"""

_POSTGRES_1 = """
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    api_key TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    token TEXT PRIMARY KEY,
    api_key TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    percent DOUBLE PRECISION NOT NULL DEFAULT 0,
    error_description TEXT,
    query TEXT,
    payload TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    heartbeat_at DOUBLE PRECISION,
    queued_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    duration DOUBLE PRECISION,
    source_size DOUBLE PRECISION,
    outputs JSONB NOT NULL DEFAULT '{}'::jsonb,
    storage_purged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks(status);
CREATE INDEX IF NOT EXISTS tasks_key_status ON tasks(api_key, status);
CREATE TABLE IF NOT EXISTS uploads (
    uuid TEXT PRIMARY KEY,
    task_token TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
    id BIGSERIAL PRIMARY KEY,
    token TEXT NOT NULL,
    event TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at DOUBLE PRECISION NOT NULL,
    claimed_until DOUBLE PRECISION,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS callbacks_pending ON callbacks(done, token, id)
"""

# 2: each callback keeps the task's status object as of its event (not as of its delivery).
_BOTH_2 = "ALTER TABLE callbacks ADD COLUMN status TEXT"

# 3: the console lists a key's tasks newest first, and shows how each callback ended
# ("delivered" or "given_up"; NULL while pending, and for rows settled before version 3).
_BOTH_3 = """
ALTER TABLE callbacks ADD COLUMN outcome TEXT;
CREATE INDEX IF NOT EXISTS tasks_key_created ON tasks(api_key, created_at)
"""

# 4: the query as the API parsed it (``Query.to_json``), which the worker runs without parsing
# the user's text again; NULL for tasks started before version 4 (the worker parses those).
_BOTH_4 = "ALTER TABLE tasks ADD COLUMN plan TEXT"

# 5: when the running attempt was claimed, for QTHUMB_TASK_DEADLINE (NULL for earlier claims).
_SQLITE_5 = "ALTER TABLE tasks ADD COLUMN claimed_at REAL"
_POSTGRES_5 = "ALTER TABLE tasks ADD COLUMN claimed_at DOUBLE PRECISION"

# 6: the faults tests ask for (``app.tasks.faults``, QTHUMB_CONTROL=1), and those a task
# matched when it started, for its worker.
_SQLITE_6 = """
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    api_key TEXT NOT NULL,
    rule TEXT NOT NULL,
    times INTEGER,
    fired INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS faults_key ON faults(api_key);
ALTER TABLE tasks ADD COLUMN faults TEXT
"""
_POSTGRES_6 = """
CREATE TABLE IF NOT EXISTS faults (
    id BIGSERIAL PRIMARY KEY,
    api_key TEXT NOT NULL,
    rule TEXT NOT NULL,
    times INTEGER,
    fired INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS faults_key ON faults(api_key);
ALTER TABLE tasks ADD COLUMN faults TEXT
"""

# 7: the task a ``retry_on_error`` retry was started for (``app.tasks.retry``).
_BOTH_7 = "ALTER TABLE tasks ADD COLUMN retry_of TEXT"

# 8: how many tokens of each kind were made for a key, when QTHUMB_SEED draws them from the
# seed (``app.tokens.seeded_token``); a reset of the key removes its counts.
_BOTH_8 = """
CREATE TABLE IF NOT EXISTS token_counts (
    api_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (api_key, kind)
)
"""

MIGRATIONS: dict[Dialect, list[tuple[int, str]]] = {
    "sqlite": [
        (1, _SQLITE_1),
        (2, _BOTH_2),
        (3, _BOTH_3),
        (4, _BOTH_4),
        (5, _SQLITE_5),
        (6, _SQLITE_6),
        (7, _BOTH_7),
        (8, _BOTH_8),
    ],
    "postgresql": [
        (1, _POSTGRES_1),
        (2, _BOTH_2),
        (3, _BOTH_3),
        (4, _BOTH_4),
        (5, _POSTGRES_5),
        (6, _POSTGRES_6),
        (7, _BOTH_7),
        (8, _BOTH_8),
    ],
}
