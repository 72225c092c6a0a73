"""Where a format's files go: ``destination`` (one object or a list of them, each a ``url`` with
its credentials and object settings) read into ``Destination`` values, and ``objects``, the
reader of any field Qencode takes as one object or a list (``destination``, ``logo``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qthumb.app.errors import BadQuery, FieldRequired


@dataclass(frozen=True)
class Destination:
    url: str
    key: str | None = None
    secret: str | None = None
    permissions: str | None = None
    storage_class: str | None = None
    cache_control: str | None = None


def objects(value: object, path: str, holding: str) -> list[tuple[dict[str, Any], str]]:
    """A field Qencode takes as one object or a list of them (``destination``, ``logo``):
    each object with its path; absent, ``""``, ``{}`` and ``[]`` are none."""
    if value is None or value == "" or value == {} or value == []:
        return []
    items = value if isinstance(value, list) else [value]
    found = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]" if isinstance(value, list) else path
        if not isinstance(item, dict):
            raise BadQuery(f"{where} must be an object with {holding}")
        found.append((item, where))
    return found


def destinations(value: object, path: str) -> tuple[Destination, ...]:
    result = []
    for item, item_path in objects(value, path, "a url"):
        url = item.get("url")
        if not isinstance(url, str) or not url.strip():
            raise FieldRequired(f"{item_path}.url")
        result.append(
            Destination(
                url=url.strip(),
                key=opt_str(item, "key"),
                secret=opt_str(item, "secret"),
                permissions=opt_str(item, "permissions"),
                storage_class=opt_str(item, "storage_class"),
                cache_control=opt_str(item, "cache_control"),
            )
        )
    return tuple(result)


def opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return None if value is None or value == "" else str(value)
