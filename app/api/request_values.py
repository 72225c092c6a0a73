"""Reading values a request carries outside Qencode's form: numbers in URL parameters and JSON
bodies of the control endpoints. One strict reader each, so that no reader takes what another
refuses: numbers are ASCII digits only (``float`` and ``int`` take ``"١٢"``, ``"1_0"``,
``" 5 "``, ``"nan"`` and ``"1e9"``; ``"²".isdigit()`` is true and ``int("²")`` fails), and a
JSON body is bounded in bytes and depth before it is parsed.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request

_INTEGER = re.compile(r"[0-9]{1,18}")
_DECIMAL = re.compile(r"(?:[0-9]{1,12}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})")
MAX_JSON_DEPTH = 8


def ascii_int(name: str, value: str, low: int, high: int) -> int:
    """``value`` as a whole number from ``low`` to ``high``; ``ValueError`` naming ``name``."""
    if not _INTEGER.fullmatch(value) or not low <= int(value) <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, not {value[:40]!r}")
    return int(value)


def ascii_decimal(name: str, value: str, low: float, high: float, unit: str = "") -> float:
    """``value`` as a decimal number (``12``, ``12.5``, ``.5``) from ``low`` to ``high``."""
    if not _DECIMAL.fullmatch(value) or not low <= float(value) <= high:
        raise ValueError(
            f"{name} must be a number{unit} from {low:g} to {high:g}, not {value[:40]!r}"
        )
    return float(value)


class BadBody(ValueError):
    """A request body that is not the JSON asked for; the message says why."""


async def json_body(request: Request, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The request's JSON body, read up to ``max_bytes`` (more is refused unread) and at most
    ``max_depth`` arrays or objects deep."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise BadBody(f"the body is over {max_bytes} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > max_bytes:
            raise BadBody(f"the body is over {max_bytes} bytes")
    if _depth(bytes(data)) > max_depth:
        raise BadBody(f"the JSON is nested over {max_depth} levels deep")
    try:
        return json.loads(data or b"null")
    except (ValueError, RecursionError):
        raise BadBody("the body is not JSON") from None


def _depth(data: bytes) -> int:
    """How deep ``[`` and ``{`` nest in ``data``, outside strings: counted before parsing, so
    a body of a million brackets costs one pass and no recursion."""
    deepest = depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest
