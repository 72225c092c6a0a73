"""mkdocs hook: the settings page's table, generated from the settings object's fields (name,
default, description), so the page cannot drift from ``app/settings.py``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

MARKER = "<!-- settings-table -->"


def _shown(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "empty"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Path):
        value = f"./{value}"
    if isinstance(value, bool):
        value = int(value)
    return f"`{value}`"


def settings_table() -> str:
    from pydantic_core import PydanticUndefined

    from qthumb.app.settings import Settings

    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        else:
            default = None if field.default is PydanticUndefined else field.default
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `QTHUMB_{name.upper()}` | {_shown(default)} | {meaning} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, settings_table())
    return markdown
