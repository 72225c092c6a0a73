"""Where results go, behind one small interface: ``Storage.put(file, name) -> StoredObject``.

``TemporaryStorage`` keeps files under the data dir, served by the API at
``/storage/<task_token>/<index>/<name>`` (§11.4) and removed after ``storage_ttl``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.settings import Settings


@dataclass(frozen=True)
class StoredObject:
    url: str
    storage: dict[str, Any] | None


class Storage(Protocol):
    def put(self, local: Path, name: str, content_type: str) -> StoredObject: ...


class TemporaryStorage:
    def __init__(self, settings: Settings, token: str, index: int) -> None:
        self.folder = settings.storage_dir / token / str(index)
        self.base_url = f"{settings.base_url}/storage/{token}/{index}"

    def put(self, local: Path, name: str, content_type: str) -> StoredObject:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".{name}.part"
        shutil.copyfile(local, partial)
        os.replace(partial, self.folder / name)  # readers never see half a file
        return StoredObject(url=f"{self.base_url}/{name}", storage=None)
