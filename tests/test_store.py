"""The task store's guarantees, on both engines: every change fenced by the attempt number,
exactly one winner when several processes race for the same change, and migrations applied
once when several processes start at once."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qthumb.app.storage.objects import Location
from qthumb.app.tasks.model import TaskStatus
from qthumb.app.tasks.results import (
    EntryType,
    FormatFailed,
    Notice,
    Results,
    Running,
    StoredFile,
)
from qthumb.app.tasks.sql.db import Database, PostgresDatabase, SqliteDatabase
from qthumb.app.tasks.sql.schema import MIGRATIONS
from qthumb.app.tasks.sql.sql_store import SqlTaskStore
from qthumb.app.tasks.wire import status_object
from tests.engines import Engines


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        sqlite = SqliteDatabase(tmp_path / "tasks.db")
        sqlite.migrate(MIGRATIONS[sqlite.dialect])
        yield sqlite
        sqlite.close()
        return
    engines: Engines = request.getfixturevalue("engines")
    db = PostgresDatabase(engines.settings()["QTHUMB_DATABASE_URL"], max_size=16)
    db.migrate(MIGRATIONS[db.dialect])
    yield db
    db.close()


def running_task(store: SqlTaskStore) -> tuple[str, int]:
    token = store.create_task("key", 0.0)
    assert store.start(token, "{}", None, 1.0)
    claimed = store.claim(token, "host:1", 2.0)
    assert claimed is not None and claimed.attempts == 1
    return token, claimed.attempts


def test_changes_are_fenced_by_the_attempt(database: Database):
    store = SqlTaskStore(database)
    token, attempt = running_task(store)
    assert store.requeue(token, attempt, 3.0)  # recovery took it back
    claimed = store.claim(token, "host:2", 4.0)
    assert claimed is not None and claimed.attempts == 2
    second = claimed.attempts
    # the first worker, presumed dead, wakes up: nothing it writes lands
    assert not store.advance(token, attempt, TaskStatus.ENCODING, 50.0)
    assert not store.heartbeat(token, attempt, 5.0)
    assert store.advance(token, second, TaskStatus.ENCODING, 10.0)
    assert store.advance(token, second, TaskStatus.SAVING, 100.0)
    assert not store.finish(token, attempt, TaskStatus.COMPLETED, Results(), None, 6.0)
    assert store.finish(token, second, TaskStatus.COMPLETED, Results(), None, 6.0)
    task = store.get(token)
    assert task is not None and task.status is TaskStatus.COMPLETED and task.attempts == 2


def test_warnings_added_while_running_survive_the_finish(database: Database):
    store = SqlTaskStore(database)
    token, attempt = running_task(store)
    store.add_warning(token, Notice("Callback delivery error", "d", "q"))
    results = Results(warnings=[Notice("format 0 failed", "x", "t")])
    assert store.finish(token, attempt, TaskStatus.ERROR, results, "failed", 3.0)
    task = store.get(token)
    assert task is not None
    assert [w.message for w in task.results.warnings] == [
        "Callback delivery error", "format 0 failed"]  # fmt: skip


def test_results_are_stored_typed_and_read_back_equal(database: Database):
    store = SqlTaskStore(database)
    token, attempt = running_task(store)
    sprite = StoredFile(0, "thumbnails", "s", Location(url="http://h/a.jpg"), None,
                        EntryType.SPRITE, 1234, 1600, 90)  # fmt: skip
    frame = StoredFile(1, "thumbnail", None, Location(url="s3://b/k.png"), {"bucket": "b"},
                       EntryType.THUMBNAIL, 9, 160, 90, time=2.5)  # fmt: skip
    video = StoredFile(2, "mp4", None, Location(on_api="/storage/t/2/v.mp4"), None,
                       EntryType.VIDEO, 10**6, duration=4.0, meta={"codec": "h264"})  # fmt: skip
    failed = FormatFailed(3, "webm", "w", "destination ftp://x: not supported")
    results = Results(made=[sprite, frame, video, failed], warnings=[Notice("m", "d", "t")])
    assert store.advance(token, attempt, TaskStatus.ENCODING, 0.0)
    assert store.advance(token, attempt, TaskStatus.SAVING, 100.0)
    assert store.finish(token, attempt, TaskStatus.COMPLETED, results, None, 3.0)
    task = store.get(token)
    assert task is not None and task.results == results
    row = database.execute("SELECT outputs FROM tasks WHERE token = ?", (token,)).first()
    assert row is not None and "images" not in str(row["outputs"])  # not the wire shape


def test_rows_written_in_the_wire_shape_are_still_read(database: Database):
    """Rows stored before typed results held Qencode's arrays; their status must not change."""
    store = SqlTaskStore(database)
    token, attempt = running_task(store)
    assert store.finish(token, attempt, TaskStatus.ERROR, Results(), "x", 3.0)
    legacy = {
        "images": [
            {"url": "http://h/t.png", "tag": "image-0-0", "user_tag": "u", "profile": None,
             "storage": None, "type": "thumbnail", "width": 160, "height": 90, "size": 77,
             "time": 1.5},
        ],
        "videos": [
            {"url": None, "tag": "video-1-0", "user_tag": None, "profile": None, "storage": None,
             "status": "error", "error": 1, "error_description": "bad destination"},
        ],
        "audios": [], "texts": [],
        "warnings": [{"message": "format 1 (mp4) failed", "details": "bad", "tag": "video-1-0"}],
    }  # fmt: skip
    database.execute("UPDATE tasks SET outputs = ? WHERE token = ?", (json.dumps(legacy), token))
    task = store.get(token)
    assert task is not None
    wire = status_object(task, "http://x")
    image = {**legacy["images"][0], "storage_info": None}
    assert wire["images"] == [image]
    assert wire["videos"] == legacy["videos"]
    assert wire["warnings"] == legacy["warnings"]


def test_exactly_one_of_many_racing_requeues_wins(database: Database):
    store = SqlTaskStore(database)
    token, attempt = running_task(store)
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def race() -> None:
        barrier.wait()
        wins.append(store.requeue(token, attempt, 3.0))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def _migrate(kind: str, target: str) -> None:
    db: Database = SqliteDatabase(Path(target)) if kind == "sqlite" else PostgresDatabase(target)
    db.migrate(MIGRATIONS[db.dialect])
    db.close()


def test_migrations_apply_once_when_processes_start_together(
    request: pytest.FixtureRequest, tmp_path: Path
):
    for kind in ("sqlite", "postgresql"):
        if kind == "sqlite":
            target = str(tmp_path / "race.db")
        else:
            target = request.getfixturevalue("engines").settings()["QTHUMB_DATABASE_URL"]
        context = multiprocessing.get_context("spawn")
        procs = [context.Process(target=_migrate, args=(kind, target)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0, kind
        db = SqliteDatabase(Path(target)) if kind == "sqlite" else PostgresDatabase(target)
        versions = [r["version"] for r in db.execute("SELECT version FROM schema_version").rows]
        db.close()
        assert versions == [v for v, _ in MIGRATIONS[db.dialect]], kind


def test_rows_with_absolute_urls_read_back_the_same_and_locations_follow_the_api(
    database: Database,
):
    """Rows written before locations held the URL the worker made (under the API's public URL
    of the time): they answer it unchanged. New rows hold ``/storage/…`` and each API answers
    with its own public URL."""
    store = SqlTaskStore(database)
    token, attempt = running_task(store)
    assert store.advance(token, attempt, TaskStatus.ENCODING, 0.0)
    assert store.advance(token, attempt, TaskStatus.SAVING, 100.0)
    assert store.finish(token, attempt, TaskStatus.COMPLETED, Results(), None, 3.0)
    old = {"index": 0, "output": "thumbnail", "user_tag": None, "url":
           f"http://old.example/storage/{token}/0/thumbnail.png", "storage": None, "kind":
           "thumbnail", "size": 5, "width": 2, "height": 2, "time": 1.0, "duration": None,
           "meta": None}  # fmt: skip
    new = {**old, "index": 1, "location": f"/storage/{token}/1/thumbnail.png"}
    del new["url"]
    # rows written now: a typed location (a path on the API, or an absolute URL)
    typed = {**new, "index": 2, "location": {"on_api": f"/storage/{token}/2/thumbnail.png"}}
    bucket = {**new, "index": 3, "location": {"url": "http://bucket.example/b/x.png"}}
    outputs = {"version": 2, "made": [{"file": f} for f in (old, new, typed, bucket)],
               "warnings": []}  # fmt: skip
    database.execute("UPDATE tasks SET outputs = ? WHERE token = ?", (json.dumps(outputs), token))
    task = store.get(token)
    assert task is not None
    for base in ("http://one.example", "https://two.example/qthumb"):
        urls = [i["url"] for i in status_object(task, base)["images"]]
        on_api = [f"{base}/storage/{token}/{n}/thumbnail.png" for n in (1, 2)]
        assert urls == [old["url"], *on_api, "http://bucket.example/b/x.png"]
        assert status_object(task, base)["status_url"] == f"{base}/v1/status"
    assert [i["url"] for i in status_object(task, None)["images"]][1].startswith("/storage/")
    assert Results.from_json(task.results.to_json()) == task.results  # typed both ways


def test_claim_returns_the_row_with_the_query_the_api_parsed(database: Database):
    """The worker runs the typed query stored when the task started (one parse, in the
    API), with the fields qthumb does not act on found by that parse; a task started before
    plans were stored is parsed from its query as it was, and a plan stored before it noted
    those fields has them found from the query, as one that no longer reads is parsed from it."""
    from qthumb.app.qencode.query import read_query
    from qthumb.workers.tasks.task_run import task_query

    store = SqlTaskStore(database)
    fmt = {"output": "thumbnails", "interval": "2", "sprite": 1, "width": 64, "two_pass": 1}
    raw = {"source": "/x.mp4", "frobnicate": 1, "format": [fmt]}
    parsed = read_query(raw)
    assert parsed.ignored == ("query.frobnicate", "query.format[0].two_pass")
    new, old = store.create_task("key", 0.0), store.create_task("key", 0.0)
    assert store.start(new, json.dumps(raw), "p", 1.0, parsed)
    assert store.start(old, json.dumps(raw), None, 1.0)  # as before schema version 4
    earlier, unreadable = store.create_task("key", 0.0), store.create_task("key", 0.0)
    plan = {k: v for k, v in parsed.to_json().items() if k != "ignored"}
    for token, stored in ((earlier, plan), (unreadable, {"version": 99})):
        assert store.start(token, json.dumps(raw), None, 1.0, parsed)
        database.execute("UPDATE tasks SET plan = ? WHERE token = ?", (json.dumps(stored), token))
    claimed_earlier = store.claim(earlier, "host:1", 2.0)
    assert claimed_earlier is not None and claimed_earlier.plan == parsed
    claimed_unreadable = store.claim(unreadable, "host:1", 2.0)
    assert claimed_unreadable is not None and claimed_unreadable.plan is None
    assert task_query(claimed_unreadable) == parsed
    claimed = store.claim(new, "host:1", 2.0)
    assert claimed is not None and claimed.status is TaskStatus.DOWNLOADING
    assert (claimed.attempts, claimed.worker_id, claimed.payload) == (1, "host:1", "p")
    assert claimed.plan == parsed and task_query(claimed) is claimed.plan
    before = store.claim(old, "host:1", 2.0)
    assert before is not None and before.plan is None and task_query(before) == parsed
    assert store.claim(new, "host:2", 3.0) is None  # running: not claimable again


def test_outputs_being_made_are_shown_then_replaced(database: Database):
    """``videos[]`` while a task runs (#25): the running entries written with its progress,
    its warnings kept, then replaced by the final results."""
    store = SqlTaskStore(database)
    token, attempt = running_task(store)
    store.add_warning(token, Notice("Callback delivery error", "d", "video-0-0"))
    for percent in (10.0, 55.5):
        running = Results(made=[Running(0, "mp4", "tag", "encoding", percent)])
        assert store.advance(token, attempt, TaskStatus.ENCODING, percent, running)
        task = store.get(token)
        assert task is not None
        video = status_object(task, "http://api")["videos"][0]
        assert (video["status"], video["percent"], video["url"]) == ("encoding", percent, None)
        assert video["tag"] == "video-0-0" and video["user_tag"] == "tag"
        assert [w["tag"] for w in status_object(task, None)["warnings"]] == ["video-0-0"]
    assert store.finish(token, attempt, TaskStatus.ERROR, Results(), "boom", 3.0)
    task = store.get(token)
    assert task is not None and status_object(task, None)["videos"] == []
    assert len(status_object(task, None)["warnings"]) == 1


def test_a_free_worker_takes_the_task_of_the_key_running_the_fewest(database: Database):
    store = SqlTaskStore(database)
    queued = {}
    for n, key in enumerate(["a", "a", "a", "b", "c"]):
        token = store.create_task(key, 0.0)
        assert store.start(token, "{}", None, 1.0 + n)
        queued.setdefault(key, []).append(token)
    first = store.claim_fair("host:1", 10.0, per_key=2)
    assert first is not None and first.token == queued["a"][0]  # all run none: the oldest
    second = store.claim_fair("host:1", 10.0, per_key=2)
    assert second is not None and second.token == queued["b"][0]  # a runs one, b none
    third = store.claim_fair("host:1", 10.0, per_key=2)
    assert third is not None and third.token == queued["c"][0]
    fourth = store.claim_fair("host:1", 10.0, per_key=2)
    assert fourth is not None and fourth.token == queued["a"][1]
    assert store.next_fair(10.0, per_key=2) is None  # a runs its most: its third waits
    assert store.waiting_for_a_worker(100.0, per_key=2) == []  # on its key, not a message
    assert store.finish(first.token, 1, TaskStatus.ERROR, Results(), "ended", 11.0)
    assert store.next_fair(12.0, per_key=2) == queued["a"][2]
    # a task handed back to be tried later is not taken before it is due
    assert store.requeue(second.token, 1, 50.0)
    assert store.next_fair(20.0, per_key=5) == queued["a"][2]
    later = store.claim_fair("host:1", 20.0, per_key=5)
    assert later is not None and later.token == queued["a"][2]
    assert store.next_fair(20.0, per_key=5) is None
    assert store.next_fair(50.0, per_key=5) == second.token


def test_running_on_counts_one_machines_attempts(database: Database):
    store = SqlTaskStore(database)
    for n, worker in enumerate(["vm-a:10", "vm-a:11", "vm-ab:12", "vm-b:13"]):
        token = store.create_task("key", 0.0)
        assert store.start(token, "{}", None, 1.0)
        assert store.claim(token, worker, 2.0 + n) is not None
    assert (store.running_on("vm-a"), store.running_on("vm-ab"), store.running_on("vm")) == (
        2, 1, 0)  # fmt: skip


def test_a_lone_task_decodes_with_every_core():
    from qthumb.app.settings import Settings

    cores = os.cpu_count() or 1
    settings = Settings(workers=cores)
    assert settings.decode_share(1) == cores  # alone: the whole machine
    assert settings.decode_share(cores) == 1  # as many as cores: one each
    assert settings.decode_share(cores * 4) == 1
    assert Settings(decode_threads=3).decode_share(1) == 3  # the override stays one
