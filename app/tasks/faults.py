"""Faults a test asks for: the mock's chaos controls (``QTHUMB_CONTROL=1``).

Rules come from ``POST /_qthumb/faults`` (kept in the database, per API key, so the API and
every worker see them) or ride on one task as ``qthumb_faults`` in its query. Three kinds:

- ``MethodFault``: an API method answers a Qencode error, an HTTP status, late, or not at all;
- ``TaskFault``: matching tasks fail at a stage, stay in a stage a while, or fail one format;
  matched when the task starts, and kept with it (``tasks.faults``) for its worker;
- ``CallbackFault``: a callback event is not sent, sent late, or sent twice; applied when the
  event is queued.

Every rule may carry ``times`` (default: every time); each firing is counted (``fired``) and
logged with the task token.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from qthumb.app.tasks.sql.db import Database

log = logging.getLogger("qthumb.faults")

FAULT_METHODS = ("access_token", "create_task", "start_encode2", "status", "upload")
STAGES = ("downloading", "encoding", "saving")
EVENTS = ("queued", "downloading", "encoding", "saving", "saved", "error")
# What one key may keep: every request of the key reads its rules (``in_force``).
MAX_RULES_PER_KEY = 100
MAX_RULE_BYTES = 4096  # one rule, as JSON
MAX_TEXT = 1000  # characters of a message, error_description or match string


class BadRule(ValueError):
    """A rule that cannot be used; the message names the field."""


@dataclass(frozen=True)
class MethodFault:
    method: str
    error: int | None = None
    message: str | None = None
    http_status: int | None = None
    delay: float | None = None
    drop: bool = False


@dataclass(frozen=True)
class TaskFault:
    payload: str | None = None  # substrings the task must hold to match
    user_tag: str | None = None
    fail_at: str | None = None
    error_description: str | None = None
    hold: dict[str, float] = field(default_factory=dict)
    fail_format: int | None = None

    def matches(self, payload: str | None, user_tags: list[str]) -> bool:
        if self.payload is not None and self.payload not in (payload or ""):
            return False
        return self.user_tag is None or any(self.user_tag in tag for tag in user_tags)


@dataclass(frozen=True)
class CallbackFault:
    event: str
    drop: bool = False
    delay: float | None = None
    duplicate: bool = False


Fault = MethodFault | TaskFault | CallbackFault


def _number(rule: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = rule.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRule(f"{name} must be a number from {low:g} to {high:g}")
    return float(value)


def _text(rule: dict[str, Any], name: str) -> str | None:
    value = rule.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRule(f"{name} must be a string")
    if value is not None and len(value) > MAX_TEXT:
        raise BadRule(f"{name} is over {MAX_TEXT} characters")
    if value is not None and not _storable(value):
        raise BadRule(f"{name} holds a NUL or a lone surrogate")
    return value


def _storable(text: str) -> bool:
    """Text both engines keep (PostgreSQL refuses NUL; UTF-8, a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def parse_rule(rule: object) -> tuple[Fault, int | None]:
    """One rule as a test sends it; and its ``times`` (None: every time)."""
    if not isinstance(rule, dict):
        raise BadRule("a rule must be a JSON object")
    if len(json.dumps(rule)) > MAX_RULE_BYTES:
        raise BadRule(f"a rule is {MAX_RULE_BYTES} bytes of JSON at most")
    times = _number(rule, "times", 1, 1e9)
    count = None if times is None else int(times)
    if "method" in rule:
        method = rule["method"]
        if method not in FAULT_METHODS:
            raise BadRule(f"method must be one of {', '.join(FAULT_METHODS)}")
        error = _number(rule, "error", 1, 1000)
        status = _number(rule, "http_status", 200, 599)  # a 1xx is no answer: the connection
        delay = _number(rule, "delay", 0, 600)
        drop = rule.get("drop") is True
        if sum(x is not None for x in (error, status, delay)) + drop != 1:
            raise BadRule("a method rule needs one of error, http_status, delay or drop")
        return MethodFault(
            method,
            None if error is None else int(error),
            _text(rule, "message"),
            None if status is None else int(status),
            delay,
            drop,
        ), count
    if "task" in rule:
        match = rule["task"]
        if not isinstance(match, dict):
            raise BadRule("task must be an object ({} matches every task of the key)")
        fail_at = _text(rule, "fail_at")
        if fail_at is not None and fail_at not in STAGES:
            raise BadRule(f"fail_at must be one of {', '.join(STAGES)}")
        hold_in = rule.get("hold") or {}
        if not isinstance(hold_in, dict) or any(
            s not in STAGES
            or isinstance(v, bool)
            or not isinstance(v, int | float)
            or not 0 <= v <= 3600
            for s, v in hold_in.items()
        ):
            raise BadRule("hold must map a stage (downloading, encoding, saving) to seconds")
        fail_format = _number(rule, "fail_format", 0, 99)
        if fail_at is None and not hold_in and fail_format is None:
            raise BadRule("a task rule needs fail_at, hold or fail_format")
        return TaskFault(
            _text(match, "payload"),
            _text(match, "user_tag"),
            fail_at,
            _text(rule, "error_description"),
            {s: float(v) for s, v in hold_in.items()},
            None if fail_format is None else int(fail_format),
        ), count
    if "callback" in rule:
        event = rule["callback"]
        if event not in EVENTS:
            raise BadRule(f"callback must be one of {', '.join(EVENTS)}")
        delay = _number(rule, "delay", 0, 3600)
        drop, duplicate = rule.get("drop") is True, rule.get("duplicate") is True
        if (delay is not None) + drop + duplicate != 1:
            raise BadRule("a callback rule needs one of drop, delay or duplicate")
        return CallbackFault(event, drop, delay, duplicate), count
    raise BadRule("a rule names a method, a task or a callback")


def as_request(fault: Fault, times: int | None) -> dict[str, Any]:
    """The rule as a test would POST it (``parse_rule`` reads it back as the same fault)."""
    fields = {k: v for k, v in asdict(fault).items() if v not in (None, {}, False)}
    if isinstance(fault, MethodFault):
        rule = fields
    elif isinstance(fault, TaskFault):
        match = {k: fields.pop(k) for k in ("payload", "user_tag") if k in fields}
        rule = {"task": match, **fields}
    else:
        rule = {"callback": fields.pop("event"), **fields}
    return rule if times is None else {**rule, "times": times}


def fault_to_json(fault: Fault) -> dict[str, Any]:
    kind = {MethodFault: "method", TaskFault: "task", CallbackFault: "callback"}[type(fault)]
    return {"kind": kind, **{k: v for k, v in asdict(fault).items() if v not in (None, {})}}


def fault_from_json(data: dict[str, Any]) -> Fault:
    kind = data.pop("kind")
    cls: type[Fault] = {"method": MethodFault, "task": TaskFault, "callback": CallbackFault}[kind]
    return cls(**data)


@dataclass(frozen=True)
class Rule:
    id: int
    fault: Fault
    times: int | None
    fired: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **fault_to_json(self.fault),
            "times": self.times,
            "fired": self.fired,
        }


class FaultStore:
    """The rules in force, per API key, in the task database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        api_key: str,
        rules: list[tuple[Fault, int | None]],
        now: float,
        most: int = MAX_RULES_PER_KEY,
    ) -> list[int]:
        """Keep ``rules`` for ``api_key``, which may keep ``most`` at once."""
        kept = self.db.execute(
            "SELECT count(*) AS n FROM faults WHERE api_key = ?", (api_key,)
        ).first()
        held = int(kept["n"]) if kept else 0
        if held + len(rules) > most:
            raise BadRule(
                f"a key keeps {most} rules at most and this one has {held}: clear some first "
                "(DELETE /_qthumb/faults)"
            )
        ids = []
        for fault, times in rules:
            row = self.db.execute(
                "INSERT INTO faults (api_key, rule, times, fired, created_at) "
                "VALUES (?, ?, ?, 0, ?) RETURNING id",
                (api_key, json.dumps(fault_to_json(fault)), times, now),
            ).first()
            assert row is not None
            ids.append(int(row["id"]))
        return ids

    def any(self) -> bool:
        """Whether any key has a rule: one indexed read, so a request of a server whose
        tests set none pays nothing more."""
        return self.db.execute("SELECT 1 AS one FROM faults LIMIT 1", ()).first() is not None

    def rules(self, api_key: str) -> list[Rule]:
        rows = self.db.execute(
            "SELECT id, rule, times, fired FROM faults WHERE api_key = ? ORDER BY id", (api_key,)
        ).rows
        return [
            Rule(int(r["id"]), fault_from_json(json.loads(r["rule"])), r["times"], int(r["fired"]))
            for r in rows
        ]

    def in_force(self, api_key: str, kind: type[Fault]) -> list[Rule]:
        return [
            r
            for r in self.rules(api_key)
            if isinstance(r.fault, kind) and (r.times is None or r.fired < r.times)
        ]

    def fire(self, rule: Rule, token: str = "") -> bool:
        """Count one firing, if the rule has any left (several processes race safely)."""
        fired = (
            self.db.execute(
                "UPDATE faults SET fired = fired + 1 WHERE id = ? "
                "AND (times IS NULL OR fired < times)",
                (rule.id,),
            ).rowcount
            == 1
        )
        if fired:
            log.warning(
                "fault %d fired%s: %s",
                rule.id,
                f" on task {token}" if token else "",
                json.dumps(fault_to_json(rule.fault)),
            )
        return fired

    def clear(self, api_key: str, rule_id: int | None = None) -> int:
        if rule_id is None:
            return self.db.execute("DELETE FROM faults WHERE api_key = ?", (api_key,)).rowcount
        return self.db.execute(
            "DELETE FROM faults WHERE api_key = ? AND id = ?", (api_key, rule_id)
        ).rowcount


def faults_for_task(
    store: FaultStore,
    api_key: str,
    token: str,
    carried: list[Fault],
    payload: str | None,
    tags: list[str],
) -> str | None:
    """What a starting task will meet: the rules its query carried, and its key's task rules
    it matches (each counted as fired)."""
    found = list(carried)
    for rule in store.in_force(api_key, TaskFault):
        assert isinstance(rule.fault, TaskFault)
        if rule.fault.matches(payload, tags) and store.fire(rule, token):
            found.append(rule.fault)
    return task_faults_json(found)


def task_faults_json(faults: list[Fault]) -> str | None:
    """What one task keeps (``tasks.faults``): the task rules it matched when it started and
    the rules its own query carried (``qthumb_faults``)."""
    return json.dumps([fault_to_json(f) for f in faults]) if faults else None


def task_faults_from_json(text: str | None) -> list[Fault]:
    return [fault_from_json(item) for item in json.loads(text)] if text else []
