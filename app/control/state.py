"""One API key's state as one archive, and back (``GET`` / ``POST /_qthumb/state``, and
``QTHUMB_INIT_DIR`` at start): for test suites and UI teams that want a qthumb that starts
with the same finished tasks and results every time.

The archive is a gzipped tar:

- ``manifest.json``: ``{"format": "qthumb-state", "version": 1, "api_key", "exported_at",
  "tasks", "files", "faults"}`` (the key it was exported from: ``QTHUMB_INIT_DIR`` loads it
  for that key; ``POST`` loads it for the caller's);
- ``tasks.jsonl``: one ended task (``completed`` or ``error``) a line, its row as stored:
  token, times, query, payload, the typed results (locations, never absolute URLs: a server
  that loads it makes them afresh from its own address); unfinished tasks are left out;
- ``faults.json``: the key's fault rules as ``POST /_qthumb/faults`` takes them, each with
  what is left of its ``times`` (spent ones left out);
- ``files/<token>/<format>/<name>``: every result kept in qthumb's own storage (results
  delivered to the user's bucket stay there, as their URLs do).

Loading keeps the tokens. A token held by another key refuses the whole archive; one of the
same key is replaced (``POST``) or kept (at start, where several API processes may load the
same folder at once).
"""

from __future__ import annotations

import io
import json
import logging
import mimetypes
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from qthumb.app.storage.files import Files, result_key, result_path
from qthumb.app.storage.objects import FileError, StoreUnavailable
from qthumb.app.tasks.faults import BadRule, FaultStore, as_request, parse_rule
from qthumb.app.tasks.model import TaskStatus
from qthumb.app.tasks.results import Results
from qthumb.app.tasks.sql.db import Database
from qthumb.app.tokens import is_token

log = logging.getLogger("qthumb.state")

FORMAT, VERSION = "qthumb-state", 1
ENDED = (TaskStatus.COMPLETED.value, TaskStatus.ERROR.value)
# The columns an archive carries: a task as its key saw it, never the worker that ran it.
COLUMNS = (
    *("token", "status", "created_at", "percent", "error_description", "query", "payload"),
    *("attempts", "queued_at", "finished_at", "duration", "source_size", "outputs", "plan"),
    "retry_of",
)
MAX_TASKS_TEXT = 64 * 2**20  # tasks.jsonl and faults.json, read into memory
MAX_MEMBERS = 1_000_000


class BadArchive(ValueError):
    """An archive that cannot be loaded, said in words a person can act on."""


@dataclass
class StateReport:
    tasks: int = 0
    files: int = 0
    faults: int = 0
    kept: int = 0  # tasks already there (QTHUMB_INIT_DIR leaves them)
    missing_files: int = 0  # results gone from the storage when exported (purged)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def export_state(
    db: Database, files: Files, faults: FaultStore | None, api_key: str, out: IO[bytes]
) -> StateReport:
    """Write ``api_key``'s ended tasks, their stored results and its fault rules to ``out``."""
    report = StateReport()
    marks = ", ".join("?" for _ in ENDED)
    rows = db.execute(
        f"SELECT {', '.join(COLUMNS)} FROM tasks WHERE api_key = ? AND status IN ({marks}) "
        "ORDER BY created_at, token",
        (api_key, *ENDED),
    ).rows
    rules = [  # as a test would POST them, each with what is left of its times
        as_request(r.fault, None if r.times is None else r.times - r.fired)
        for r in (faults.rules(api_key) if faults is not None else [])
        if r.times is None or r.times > r.fired
    ]
    with tarfile.open(fileobj=out, mode="w:gz") as tar, tempfile.TemporaryDirectory() as tmp:
        stored = [(row["token"], key) for row in rows for key in _result_keys(row)]
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "api_key": api_key,
            "exported_at": time.time(),
            "tasks": len(rows),
            "faults": len(rules),
        }
        _add_text(tar, "manifest.json", json.dumps(manifest, indent=1))
        _add_text(tar, "tasks.jsonl", "".join(json.dumps(_portable(r)) + "\n" for r in rows))
        _add_text(tar, "faults.json", json.dumps(rules))
        for n, (_, key) in enumerate(stored):
            local = Path(tmp) / str(n)
            try:
                found = files.results.get(key, local)  # in place on disk, or fetched here
            except StoreUnavailable:
                raise  # not "missing": the store did not answer (the route says so)
            except (FileNotFoundError, FileError):  # purged since (QTHUMB_STORAGE_TTL)
                report.missing_files += 1
                continue
            tar.add(str(found), arcname=f"files/{key}", recursive=False)
            local.unlink(missing_ok=True)
            report.files += 1
    report.tasks, report.faults = len(rows), len(rules)
    return report


def _portable(row: Any) -> dict[str, Any]:
    """A row as either engine reads it back: ``outputs`` as JSON text (PostgreSQL's is JSONB,
    which its driver hands over decoded)."""
    task = dict(row)
    if not isinstance(task["outputs"], str):
        task["outputs"] = json.dumps(task["outputs"])
    return task


def _result_keys(row: Any) -> Iterator[str]:
    """The keys of the task's results in qthumb's own storage (``/storage/<key>``)."""
    try:
        results = Results.from_json(json.loads(_portable(row)["outputs"] or "{}"))
    except (ValueError, TypeError, KeyError):
        return
    for file in results.files:
        key = result_key(file.location)
        if key is not None:
            yield key


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def import_state(
    db: Database,
    files: Files,
    faults: FaultStore | None,
    archive: IO[bytes],
    api_key: str | None,
    replace: bool = True,
    keys: set[str] | None = None,
    max_bytes: int = 2**34,
) -> StateReport:
    """Load an archive for ``api_key`` (None: the key its manifest names, which must be one of
    ``keys``). Everything is checked before anything is written: a bad archive changes
    nothing. ``max_bytes``: what its members may hold in all, unpacked (a gzip bomb stops at
    the member that passes it, before its data is read)."""
    report = StateReport()
    try:
        with tarfile.open(fileobj=archive, mode="r:gz") as tar:
            members = _members(tar, max_bytes)
            manifest = _json_member(tar, members, "manifest.json")
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise BadArchive("it is not a qthumb state archive (no manifest.json of one)")
            if manifest.get("version") != VERSION:
                raise BadArchive(f"state archive version {manifest.get('version')!r}: {VERSION}")
            key = api_key or str(manifest.get("api_key") or "")
            if api_key is None and key not in (keys or set()):
                raise BadArchive("it was exported for an API key this server does not have")
            tasks = _tasks(tar, members)
            rules = _json_member(tar, members, "faults.json") if "faults.json" in members else []
            parsed = _rules(rules, faults)
            tokens = {task["token"] for task in tasks}
            file_members = _files(members, tokens)
            owners = _owners(db, sorted(tokens))
            taken = sorted(t for t, owner in owners.items() if owner != key)
            if taken:
                raise BadArchive(f"task {taken[0]} belongs to another API key: nothing loaded")
            for task in tasks:
                if task["token"] in owners and not replace:
                    report.kept += 1
                    continue
                _put_task(db, files, key, task, task["token"] in owners)
                for stored_key, member in file_members.get(task["token"], []):
                    _put_file(tar, member, files, stored_key)
                    report.files += 1
                report.tasks += 1
            if parsed and faults is not None and (replace or not faults.rules(key)):
                faults.clear(key)
                faults.add(key, parsed, time.time())
                report.faults = len(parsed)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BadArchive(f"not a readable .tar.gz ({exc})") from None
    return report


def _members(tar: tarfile.TarFile, max_bytes: int) -> dict[str, tarfile.TarInfo]:
    """The archive's members by name, read one header at a time: past ``MAX_MEMBERS`` members
    or ``max_bytes`` declared in all, refused before the rest is decompressed."""
    members: dict[str, tarfile.TarInfo] = {}
    held = 0
    for member in tar:
        held += member.size
        if held > max_bytes:
            raise BadArchive(f"it unpacks to more than {max_bytes} bytes")
        if len(members) >= MAX_MEMBERS:
            raise BadArchive(f"it has more than {MAX_MEMBERS} files")
        members[member.name] = member
    return members


def _small_member(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> bytes:
    """A member read whole into memory: ``manifest.json``, ``tasks.jsonl``, ``faults.json``."""
    member = members.get(name)
    if member is None or not member.isfile() or member.size > MAX_TASKS_TEXT:
        raise BadArchive(f"{name} is missing or too large")
    handle = tar.extractfile(member)
    assert handle is not None
    return handle.read()


def _json_member(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> Any:
    try:
        return json.loads(_small_member(tar, members, name))
    except ValueError:
        raise BadArchive(f"{name} is not JSON") from None


def _tasks(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> list[dict[str, Any]]:
    tasks = []
    try:
        lines = _small_member(tar, members, "tasks.jsonl").decode().splitlines()
    except UnicodeDecodeError:
        raise BadArchive("tasks.jsonl is not UTF-8 text") from None
    for n, line in enumerate(lines, 1):
        try:
            task = json.loads(line)
        except ValueError:
            raise BadArchive(f"tasks.jsonl line {n} is not JSON") from None
        if not isinstance(task, dict) or not is_token(str(task.get("token", ""))):
            raise BadArchive(f"tasks.jsonl line {n}: a task needs its token")
        if task.get("status") not in ENDED:
            raise BadArchive(f"tasks.jsonl line {n}: only ended tasks are loaded")
        tasks.append({column: task.get(column) for column in COLUMNS})
    return tasks


def _rules(rules: Any, faults: FaultStore | None) -> list[Any]:
    if not isinstance(rules, list):
        raise BadArchive("faults.json must be a list of rules")
    if rules and faults is None:
        raise BadArchive("the archive has fault rules: loading them needs QTHUMB_CONTROL=1")
    parsed = []
    for n, rule in enumerate(rules):
        try:
            parsed.append(parse_rule(rule))
        except BadRule as exc:
            raise BadArchive(f"faults.json rule {n}: {exc}") from None
    return parsed


def _files(
    members: dict[str, tarfile.TarInfo], tokens: set[str]
) -> dict[str, list[tuple[str, tarfile.TarInfo]]]:
    """Every ``files/…`` member: a regular file at a result key of a task in the archive."""
    found: dict[str, list[tuple[str, tarfile.TarInfo]]] = {}
    for name, member in members.items():
        if not name.startswith("files/"):
            continue
        parts = name.removeprefix("files/").split("/")
        key = result_path(*parts) if len(parts) == 3 else None
        if not member.isfile() or key is None or parts[0] not in tokens:
            raise BadArchive(f"{name}: not a result of a task in the archive")
        found.setdefault(parts[0], []).append((key, member))
    return found


def _owners(db: Database, tokens: list[str]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for start in range(0, len(tokens), 500):
        part = tokens[start : start + 500]
        marks = ", ".join("?" for _ in part)
        rows = db.execute(f"SELECT token, api_key FROM tasks WHERE token IN ({marks})", part).rows
        owners.update({str(r["token"]): str(r["api_key"]) for r in rows})
    return owners


def _put_task(db: Database, files: Files, key: str, task: dict[str, Any], there: bool) -> None:
    if there:
        files.delete_results(task["token"])
        db.execute("DELETE FROM tasks WHERE token = ? AND api_key = ?", (task["token"], key))
    columns = ("api_key", *COLUMNS)
    jsonb = db.dialect == "postgresql"
    marks = ", ".join("?::jsonb" if jsonb and c == "outputs" else "?" for c in columns)
    db.execute(
        f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({marks})",
        (key, *(task[c] for c in COLUMNS)),
    )


def _put_file(tar: tarfile.TarFile, member: tarfile.TarInfo, files: Files, key: str) -> None:
    handle = tar.extractfile(member)
    assert handle is not None
    with tempfile.NamedTemporaryFile() as local:
        while chunk := handle.read(1 << 20):
            local.write(chunk)
        local.flush()
        kind = mimetypes.guess_type(key)[0] or "application/octet-stream"
        files.results.put(key, Path(local.name), kind)


def load_init_dir(
    folder: Path, db: Database, files: Files, faults: FaultStore | None, keys: set[str]
) -> list[str]:
    """Every archive (``*.tar.gz``, ``*.tgz``) in ``folder``, in name order, for the key its
    manifest names, keeping tasks already there (other API processes may be loading the same
    folder); and every fault file (``*.json``: ``{"api_key": …, "faults": [rules]}``). What
    was loaded, a line a file. A file that cannot be loaded stops the start, naming it."""
    done: list[str] = []
    if not folder.is_dir():
        log.warning("QTHUMB_INIT_DIR %s is not a folder: nothing loaded", folder)
        return done
    for path in sorted(folder.iterdir()):
        try:
            if path.name.endswith((".tar.gz", ".tgz")):
                with path.open("rb") as archive:
                    report = import_state(db, files, faults, archive, None, False, keys)
                    done.append(f"{path.name}: {report.to_json()}")
            elif path.suffix == ".json":
                done.append(f"{path.name}: {_load_fault_file(path, faults, keys)} fault rules")
        except BadArchive as exc:
            raise BadArchive(f"QTHUMB_INIT_DIR {path}: {exc}") from None
    return done


def _load_fault_file(path: Path, faults: FaultStore | None, keys: set[str]) -> int:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadArchive(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("api_key") not in keys:
        raise BadArchive('a fault file is {"api_key": one of QTHUMB_API_KEYS, "faults": [...]}')
    parsed = _rules(data.get("faults") or [], faults)
    if faults is not None and parsed and not faults.rules(data["api_key"]):
        faults.add(data["api_key"], parsed, time.time())
    return len(parsed)
