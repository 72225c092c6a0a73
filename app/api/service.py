"""The rules behind the four Qencode endpoints. Routes parse the form and call one method here."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, NoReturn

from qthumb.app.api.key_guard import KeyGuard
from qthumb.app.errors import (
    ApiKeyNotFound,
    BadApiKey,
    BadPayload,
    BadQuery,
    BadTaskTokens,
    BadToken,
    FieldRequired,
    ProfileNotFound,
    QencodeError,
    SystemBusy,
    TokenNotFound,
    TooManyKeyAttempts,
)
from qthumb.app.qencode.fields.values import coerced_values
from qthumb.app.qencode.limits import check_query
from qthumb.app.qencode.profiles import load_profiles
from qthumb.app.qencode.query import Query, decode_query, parse_query, read_query
from qthumb.app.qencode.stitch import stitch_pieces
from qthumb.app.settings import API_KEY_RE, Settings
from qthumb.app.tasks.callbacks import status_snapshot
from qthumb.app.tasks.faults import (
    BadRule,
    Fault,
    FaultStore,
    MethodFault,
    faults_for_task,
    parse_rule,
)
from qthumb.app.tasks.model import TaskRecord, TaskStatus
from qthumb.app.tasks.outbox import CallbackOutbox
from qthumb.app.tasks.queue import TaskQueue
from qthumb.app.tasks.store import TaskStore
from qthumb.app.tasks.wire import status_object, status_url
from qthumb.app.tokens import is_token

log = logging.getLogger("qthumb.api")

MAX_PAYLOAD = 1000


# The methods of Qencode's API qthumb serves, each at /v1/<name>, and where tus uploads go.
METHODS = (
    "access_token",
    "create_task",
    "start_encode2",
    "start_encode",
    "status",
    "request_templates",
)
UPLOAD_PATH = "/v1/upload_file"


class QencodeService:
    def __init__(
        self,
        settings: Settings,
        store: TaskStore,
        queue: TaskQueue,
        api_keys: Iterable[str],
        outbox: CallbackOutbox,
        clock: Callable[[], float] = time.time,
        faults: FaultStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.api_keys = frozenset(api_keys)
        self.clock = clock
        self.outbox = outbox
        self.key_guard = KeyGuard(settings.key_attempts_per_minute)
        self.faults = faults  # QTHUMB_CONTROL: the faults tests ask for
        self.profiles = load_profiles(settings.profiles)

    @property
    def status_url(self) -> str:
        return status_url(self.settings.base_url)

    @property
    def upload_url(self) -> str:
        return f"{self.settings.base_url}{UPLOAD_PATH}"

    def access_token(self, api_key: str | None, client: str = "") -> dict[str, Any]:
        """A session token for ``api_key``; ``client``: the address it came from, whose
        wrong keys are counted (``app.api.key_guard``)."""
        api_key = self._known_key(api_key, client)
        expires_at = self.clock() + self.settings.scaled(self.settings.session_token_ttl)
        token = self.store.create_session(api_key, expires_at)
        expire = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return {"error": 0, "token": token, "expire": expire}

    def wrong_key(self, client: str, error: QencodeError) -> NoReturn:
        """Raise ``error`` for a wrong key from ``client``, or 429 while that address has sent
        too many (``app.api.key_guard``): only wrong keys are counted and refused, so a right
        key from the same address is answered throughout."""
        wait = self.key_guard.wrong(client)
        if wait is not None:
            raise TooManyKeyAttempts(wait)
        raise error

    def create_task(self, token: str | None) -> dict[str, Any]:
        if not token:
            raise FieldRequired("token")
        if not is_token(token):
            raise BadToken()
        api_key = self.store.session_owner(token, self.clock())
        if api_key is None:
            raise TokenNotFound()
        task_token = self.store.create_task(api_key, self.clock())
        log.info("task %s created", task_token)
        return {"error": 0, "upload_url": self.upload_url, "task_token": task_token}

    def start_encode2(
        self, task_token: str | None, query: str | None, payload: str | None
    ) -> dict[str, Any]:
        if not task_token:
            raise FieldRequired("task_token")
        if not is_token(task_token):
            raise BadToken("Bad task_token")
        if query is None or not query.strip():
            raise FieldRequired("query")
        if payload is not None and len(payload) > MAX_PAYLOAD:
            raise BadPayload()
        task = self.store.get(task_token)
        if task is None:
            raise TokenNotFound()
        if task.status is not TaskStatus.CREATED:
            raise QencodeError("task already started")
        inner = decode_query(query)
        carried = inner.pop("qthumb_faults", None)  # read below, only when control is on
        formats = inner.get("format")
        if isinstance(formats, list) and len(formats) > self.settings.max_formats:
            raise BadQuery(
                f"query.format has {len(formats)} formats; the limit is "
                f"{self.settings.max_formats} (QTHUMB_MAX_FORMATS)"
            )
        # the one parse of the task: refuses a bad query now, not in the worker, and notes the
        # fields qthumb does not act on (stored in the plan, said by the worker as warnings)
        parsed = read_query(inner)
        check_query(parsed, self.settings)
        if self.settings.strict:
            if parsed.ignored:
                raise BadQuery(
                    f"{parsed.ignored[0]}: qthumb does not act on this field (QTHUMB_STRICT=1)"
                )
            if lenient := coerced_values(lambda: parse_query(inner)):
                raise BadQuery(f"{lenient[0]} (QTHUMB_STRICT=1)")
        active = self.store.active_tasks(task.api_key)
        if active >= self.settings.max_active_tasks_per_key:
            raise SystemBusy(
                f"this API key has {active} tasks queued or running; the limit is "
                f"{self.settings.max_active_tasks_per_key}: retry when some have finished"
            )
        faults = self._task_faults(task.api_key, task_token, carried, payload, parsed)
        if carried is not None:
            inner["qthumb_faults"] = carried  # the user's query is shown back as sent
        if not self.store.start(
            task_token, json.dumps(inner), payload, self.clock(), parsed, faults
        ):
            raise QencodeError("task already started")
        if parsed.callback_url:
            # before a worker is woken: a task's callbacks go out in the order they were
            # queued, and a quick task's "saved" queued first was sent before "queued"
            queued = self.store.get(task_token)
            snapshot = None if queued is None else status_snapshot(queued)
            self.outbox.add(task_token, ["queued"], self.clock(), snapshot)
        self.queue.enqueue(task_token)
        log.info("task %s queued", task_token)
        return {"error": 0, "status_url": self.status_url}

    def _task_faults(
        self, api_key: str, token: str, carried: object, payload: str | None, parsed: Query
    ) -> str | None:
        """The faults this task will meet (``QTHUMB_CONTROL`` only): the task rules of its
        key it matches, and those its query carries (``qthumb_faults``)."""
        if self.faults is None:
            return None
        found: list[Fault] = []
        if carried is not None:
            if not isinstance(carried, list):
                raise BadQuery("query.qthumb_faults must be a list of rules")
            for n, rule in enumerate(carried):
                try:
                    fault, _ = parse_rule(rule)
                except BadRule as exc:
                    raise BadQuery(f"query.qthumb_faults[{n}]: {exc}") from None
                if isinstance(fault, MethodFault):
                    raise BadQuery(
                        f"query.qthumb_faults[{n}]: a task carries task and callback rules only"
                    )
                found.append(fault)
        tags = [spec.user_tag or "" for spec in parsed.formats]
        return faults_for_task(self.faults, api_key, token, found, payload, tags)

    def start_encode(
        self,
        task_token: str | None,
        profiles: str | None,
        uri: str | None,
        payload: str | None,
        stitch: str | None = None,
        start_time: str | None = None,
        duration: str | None = None,
    ) -> dict[str, Any]:
        """The legacy method every SDK's ``start()`` calls: the profiles' format entries
        (``QTHUMB_PROFILES``), in the order named, on ``uri`` (or the ``stitch`` list, as JSON
        text), run as ``start_encode2``; ``start_time`` and ``duration`` (the SDKs' task
        fields) clip every entry that does not clip itself."""
        if not self.profiles:
            raise ProfileNotFound(
                "Profile not found: qthumb has no encoding profiles, send a custom query to"
                " start_encode2 instead (or give qthumb yours: QTHUMB_PROFILES)"
            )
        names = [p.strip() for p in (profiles or "").split(",") if p.strip()]
        if not names:
            raise ProfileNotFound("Profile not found: send profiles, their ids between commas")
        formats: list[Any] = []
        for name in names:
            if name not in self.profiles:
                raise ProfileNotFound(f"Profile not found: {name[:64]!r}")
            formats += self.profiles[name]
        clip = {k: v for k, v in (("start_time", start_time), ("duration", duration)) if v}
        formats = [{**clip, **entry} for entry in formats]
        if stitch:
            pieces = stitch_pieces(stitch, "stitch")  # checked here, to name the form field
            query: dict[str, Any] = {"stitch": [asdict(p) for p in pieces], "format": formats}
        elif uri:
            query = {"source": uri, "format": formats}
        else:
            raise FieldRequired("uri")
        return self.start_encode2(task_token, json.dumps({"query": query}), payload)

    def _known_key(self, api_key: str | None, client: str) -> str:
        if not api_key:
            raise FieldRequired("api_key")
        if not API_KEY_RE.match(api_key):
            self.wrong_key(client, BadApiKey())
        if api_key not in self.api_keys:
            self.wrong_key(client, ApiKeyNotFound())
        return api_key

    def request_templates(self, api_key: str | None, client: str = "") -> dict[str, Any]:
        """The Node SDK's ``getTemplates()``: the profiles of ``QTHUMB_PROFILES`` (none
        without it), each its id and format entries; the key checked as a login checks it."""
        self._known_key(api_key, client)
        templates = [
            {"id": name, "name": name, "format": entries} for name, entries in self.profiles.items()
        ]
        return {"error": 0, "templates": templates}

    def status(self, tokens: list[str]) -> dict[str, Any]:
        self.check_status_tokens(tokens)
        return self.statuses(tokens, self.store.statuses(tokens))

    async def status_async(self, tokens: list[str]) -> dict[str, Any]:
        """``status`` on the event loop, its read awaited (``TaskStore.statuses_async``)."""
        self.check_status_tokens(tokens)
        return self.statuses(tokens, await self.store.statuses_async(tokens))

    @staticmethod
    def check_status_tokens(tokens: list[str]) -> None:
        if not tokens:
            raise FieldRequired("task_tokens")
        for token in tokens:
            if not is_token(token):
                raise BadTaskTokens(f"Bad task_tokens: {token[:64]!r} is not a task token")

    def statuses(self, tokens: list[str], records: dict[str, TaskRecord]) -> dict[str, Any]:
        statuses: dict[str, Any] = {}
        base = self.settings.base_url
        for token in tokens:
            record = records.get(token)
            statuses[token] = None if record is None else status_object(record, base)
        return {"error": 0, "statuses": statuses}


def split_task_tokens(single: list[str], bracketed: list[str]) -> list[str]:
    """``task_tokens`` (one, comma list or JSON array) and repeated ``task_tokens[]``
    (docs/compatibility.md)."""
    found: list[str] = []
    for value in [*single, *bracketed]:
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except (ValueError, RecursionError):  # ValueError: JSON errors, giant numbers
                raise BadTaskTokens("Bad task_tokens: not a JSON list") from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise BadTaskTokens("Bad task_tokens: a JSON list of task tokens (strings)")
            parts = [item.strip() for item in items]
        else:
            parts = [part.strip() for part in text.split(",")]
        found.extend(part for part in parts if part)
    return list(dict.fromkeys(found))
