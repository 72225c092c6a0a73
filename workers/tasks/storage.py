"""Where results go, behind one small interface: ``Storage.put(file, name) -> StoredObject``.

``TemporaryStorage`` hands files to qthumb's own store (``app.storage.files``: the data dir or a
bucket), served by any API at ``/storage/<task_token>/<index>/<name>`` (§11.4), a location each API
makes absolute with its own public URL and removed
after ``storage_ttl``; ``workers.tasks.s3.S3Storage`` puts them in a user's bucket.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from qthumb.app.settings import Settings
from qthumb.app.storage.files import FileError, Files, result_location
from qthumb.workers.tasks.failures import FormatFailure


@dataclass(frozen=True)
class StoredObject:
    location: str  # see app.tasks.results.StoredFile.location
    storage: dict[str, Any] | None


class Storage(Protocol):
    def put(self, local: Path, name: str, content_type: str) -> StoredObject: ...


class TemporaryStorage:
    def __init__(self, settings: Settings, files: Files, token: str, index: int) -> None:
        self.settings, self.files, self.token, self.index = settings, files, token, index

    def put(self, local: Path, name: str, content_type: str) -> StoredObject:
        try:
            self.files.put_result(self.token, self.index, local, name, content_type)
        except FileError as exc:
            raise FormatFailure(str(exc)) from None
        return StoredObject(location=result_location(self.token, self.index, name), storage=None)


class FolderStorage:
    """Files into a folder on this machine (the offline commands): each appears under its
    final name only when whole (written beside it, then renamed). ``single``: the one file a
    ``thumbnail`` makes takes exactly that path instead."""

    def __init__(self, folder: Path, single: Path | None = None) -> None:
        self.folder, self.single = folder, single

    def put(self, local: Path, name: str, content_type: str) -> StoredObject:
        final = self.single or self.folder / name
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{final.name}.partial")
        try:
            shutil.copyfile(local, partial)  # same folder as the final name: the rename is atomic
            os.replace(partial, final)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise FormatFailure(f"{final}: {exc.strerror or exc}") from None
        return StoredObject(location=final.resolve().as_uri(), storage=None)
