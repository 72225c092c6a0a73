"""Parse a ``start_encode2`` query into typed values (each format by its kind's class,
``app.qencode.formats``).

Pure functions: the API validates with them when a task starts, and the worker parses the stored
query again with the same code, so both sides always agree. Every rejection is a ``BadQuery``
whose message names the field path (``query.format[1].time``) and what is wrong with it.

Qencode leniency kept here (docs/compatibility.md): numbers may come as strings, ``tag`` or
``user_tag``, a destination may be ``""``, ``{}``, an object or a list of objects; ``query``
must be wrapped in ``{"query": …}`` (error 19 otherwise, as Qencode answers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, is_dataclass, replace
from enum import Enum
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints
from urllib.parse import unquote, urlsplit

from qthumb.app.egress import url_problem
from qthumb.app.errors import BadQuery, FieldRequired, QencodeError, QueryNotWrapped
from qthumb.app.qencode.fields.destinations import Destination, destinations
from qthumb.app.qencode.fields.values import (
    MAX_SIDE,
    ImageFormat,
    Placeholder,
    ResizeMode,
    Sizing,
    flag,
    opt_float,
    url_scheme,
)
from qthumb.app.qencode.formats import KINDS, FormatSpec
from qthumb.app.qencode.kinds import Output
from qthumb.app.qencode.stitch import Piece, stitch_pieces

__all__ = [
    "MAX_SIDE",
    "Destination",
    "ImageFormat",
    "Placeholder",
    "Query",
    "ResizeMode",
    "Sizing",
    "decode_query",
    "parse_format",
    "parse_query",
    "url_scheme",
]


@dataclass(frozen=True)
class Query:
    source: str
    formats: tuple[FormatSpec, ...]
    callback_url: str | None = None
    upscale: bool = False  # make video outputs larger than the source (else: not made)
    retry_on_error: bool = False  # a task that fails for a passing reason runs once more
    # query.stitch: the sources joined into one timeline (``source`` is then "")
    stitch: tuple[Piece, ...] = ()
    # paths of the user's fields qthumb did not act on (``read_query``): found by the one parse
    # at start_encode2, said as warnings by the worker, refused in strict mode
    ignored: tuple[str, ...] = ()

    def secrets(self) -> list[str]:
        """Every credential the query carries, for ``app.redact`` to mask wherever it
        would be repeated: destination keys and secrets, and the user-info of its URLs."""
        found: list[str] = []
        urls = [self.source, self.callback_url or "", *(p.url for p in self.stitch)]
        for spec in self.formats:
            for d in spec.destinations:
                found += [d.key or "", d.secret or ""]
                urls.append(d.url)
        for url in urls:
            try:
                parts = urlsplit(url)
                found += [unquote(parts.username or ""), unquote(parts.password or "")]
            except ValueError:
                continue
        return [s for s in found if s]

    def to_json(self) -> dict[str, Any]:
        """The canonical stored form: the typed values, every default spelled out, read back
        by ``from_json`` without parsing the user's query again."""
        return {"version": PLAN_VERSION, **_encode(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Query:
        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"not a stored query of version {PLAN_VERSION}")
        formats = tuple(_decode(KINDS[f["output"]], f) for f in data["formats"])
        stitch = tuple(Piece(**piece) for piece in data.get("stitch", ()))
        return cls(
            data["source"],
            formats,
            data["callback_url"],
            bool(data.get("upscale")),
            bool(data.get("retry_on_error")),
            stitch,
            tuple(data.get("ignored", ())),
        )


PLAN_VERSION = 1


def _encode(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value.value if isinstance(value, Enum) else value


def _decode(cls: type[Any], data: dict[str, Any]) -> Any:
    """Fields a stored plan lacks (stored before they existed) keep their defaults."""
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls) if f.name in data]
    return cls(**{name: _decode_value(hints[name], data[name]) for name in known})


def _decode_value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if get_origin(hint) in (UnionType, Union):  # X | None: the one that is not None
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
    if get_origin(hint) is tuple:
        return tuple(_decode_value(get_args(hint)[0], v) for v in value)
    if isinstance(hint, type) and is_dataclass(hint):
        return _decode(hint, value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    return value


def decode_query(raw: str, wrapped: bool = True) -> dict[str, Any]:
    """Turn the ``query`` form field, ``{"query": {…}}``, into the inner query object. A bare
    query is error 19 "query field is required", as Qencode answers it, unless ``wrapped`` is
    false (the offline ``qthumb run``, which takes either)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError: also ints past 4300 digits
        raise BadQuery(f"query is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise BadQuery("query must be a JSON object")
    if wrapped and "query" not in value:
        raise QueryNotWrapped()
    inner = value.get("query", value) if "format" not in value else value
    if isinstance(inner, str):  # {"query": "<json>"}: encoded twice by some callers
        return decode_query(inner, wrapped=False)
    if not isinstance(inner, dict):
        raise BadQuery("query.query must be a JSON object")
    return inner


class _Read(dict[str, Any]):
    """A query object that remembers which of its fields the parsers read: the others are
    fields qthumb does not act on (``ignored_fields``)."""

    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__(value)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


# Read by qthumb outside the parsers (qthumb_faults, app.tasks.faults), or Qencode's own
# wrapping, never worth a warning.
_NOT_IGNORED = frozenset({"query", "qthumb_faults"})
# Fields Qencode accepts that change nothing in what qthumb makes: accepted without a warning
# (Qencode's docs recommend encoder_version 2 on every job; qthumb makes no subtasks)
NO_EFFECT = frozenset({"encoder_version", "use_subtask_callback"})


def read_query(obj: dict[str, Any]) -> Query:
    """The typed query and, in ``Query.ignored``, the paths of its fields qthumb does not act
    on (``query.frobnicate``, ``query.format[0].logo``), in order, from one parse. A format
    qthumb does not make at all has its own warning, and no list of its fields."""
    top, tracked = _Read(obj), list[str]()
    query = parse_query(top, tracked)
    quiet = _NOT_IGNORED | NO_EFFECT
    found = [f"query.{k}" for k in obj if k not in top.read and k not in quiet]
    return replace(query, ignored=tuple(found + tracked))


def ignored_fields(obj: dict[str, Any]) -> list[str]:
    """``read_query(obj).ignored``, or none for a query refused anyway (with its own message)."""
    try:
        return list(read_query(obj).ignored)
    except QencodeError:
        return []


def parse_query(obj: dict[str, Any], tracked: list[str] | None = None) -> Query:
    """``tracked``: a list that receives the paths of the formats' fields no parser read."""
    source = obj.get("source")
    stitch: tuple[Piece, ...] = ()
    if isinstance(source, list):  # as the Node SDK's StartCustom would send it as stitch
        stitch, source = stitch_pieces(source, "query.source"), ""
    elif obj.get("stitch") not in (None, ""):
        if source not in (None, ""):
            raise BadQuery("query.source and query.stitch: give one of them")
        stitch, source = stitch_pieces(obj.get("stitch")), ""
    elif source is None or source == "":
        raise FieldRequired("query.source")
    if not isinstance(source, str):
        raise BadQuery("query.source must be a string (a URL, a path or tus:<uuid>)")
    formats = obj.get("format")
    if formats is None or formats == []:
        raise FieldRequired("query.format")
    if isinstance(formats, dict):
        formats = [formats]
    if not isinstance(formats, list):
        raise BadQuery("query.format must be a list of format objects")
    callback = obj.get("callback_url")
    if callback is not None and not isinstance(callback, str):
        raise BadQuery("query.callback_url must be a string")
    if callback:
        _web_url(callback, "query.callback_url")
    if url_scheme(source) in ("http", "https"):
        _web_url(source.strip(), "query.source")
    specs = tuple(_parse_format(i, f, tracked) for i, f in enumerate(formats))
    return Query(
        source=source.strip(),
        formats=specs,
        callback_url=callback or None,
        upscale=flag(obj.get("upscale"), "query.upscale"),
        retry_on_error=flag(obj.get("retry_on_error"), "query.retry_on_error"),
        stitch=stitch,
    )


def upload_id(source: str) -> str | None:
    """The uuid a ``tus:<uuid>`` source names (as the SDKs send it), ``None`` for other
    sources. Not checked: whoever reads the upload checks it is one, and whose."""
    if url_scheme(source) != "tus":
        return None
    return source.split(":", 1)[1].strip()


def _web_url(url: str, path: str) -> None:
    problem = url_problem(url)
    if problem:
        raise BadQuery(f"{path}: {problem}")


def parse_format(obj: dict[str, Any]) -> FormatSpec:
    """One ``query.format[]`` entry alone, as a task's (what ``/v1/storyboard.*`` and
    ``/v1/animated.*`` make is the entry a task would send for it)."""
    return _parse_format(0, obj)


def _parse_format(index: int, obj: object, tracked: list[str] | None = None) -> FormatSpec:
    path = f"query.format[{index}]"
    if not isinstance(obj, dict):
        raise BadQuery(f"{path} must be an object")
    if tracked is not None:
        read = _Read(obj)
        spec = _parse_format(index, read)
        if type(spec) is not FormatSpec:  # a kind qthumb makes: its unread fields
            tracked += [
                f"{path}.{k}" for k in obj if k not in read.read and k not in spec.no_effect
            ]
        return spec
    output = obj.get("output")
    if output is None or output == "":
        raise FieldRequired(f"{path}.output")
    if not isinstance(output, str) or output not in KINDS:
        raise BadQuery(f"{path}.output: unknown output {output!r}")
    tag = obj.get("user_tag", obj.get("tag"))
    common: dict[str, Any] = {
        "index": index,
        "output": Output(output),
        "user_tag": None if tag is None else str(tag),
        "destinations": destinations(obj.get("destination"), f"{path}.destination"),
        "start_time": opt_float(obj, "start_time", path, minimum=0.0),
        "duration": opt_float(obj, "duration", path, minimum=0.0, exclusive=True),
        "soft_fail": flag(obj.get("allow_soft_fail"), f"{path}.allow_soft_fail"),
    }
    return KINDS[common["output"]].parse(obj, path, common)
