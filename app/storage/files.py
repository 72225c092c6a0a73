"""qthumb's own files: temporary results (§11.4) and tus uploads, in the data dir or in an S3
bucket (``QTHUMB_STORAGE_URL``), behind one interface used by the worker (put, read an upload),
the ``/storage`` route (stat, read a range) and the recovery sweep (delete).

The one owner of the layout:

    storage/<task_token>/<format index>/<file>     results, served at /storage/… by the API
    uploads/<uuid> (+ tuspyserver's .info)         tus uploads

In a bucket the same names sit under ``s3://host/bucket/prefix/``. An API replica then serves
what any worker wrote, and a worker reads an upload any replica received.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from qthumb.app.settings import Settings
from qthumb.app.tasks.model import is_token

if TYPE_CHECKING:  # tuspyserver brings FastAPI: imported where uploads are served, not here
    from tuspyserver.storage import TusStorage

CHUNK = 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_INDEX = re.compile(r"[0-9]{1,6}")  # ASCII digits: "²".isdigit() is true, int("²") fails


class FileError(Exception):
    """The store could not be read or written; the message says why."""


@dataclass(frozen=True)
class StoredFile:
    size: int
    local_path: Path | None = None  # set when the file is on this machine's disk


@dataclass(frozen=True)
class UploadState:
    size: int | None  # None: the client has not said yet (Upload-Defer-Length)
    offset: int


def result_path(token: str, index: int | str, name: str) -> str | None:
    """``<token>/<index>/<name>`` when all three are safe to use as a key or a path."""
    if not (is_token(token) and _INDEX.fullmatch(str(index)) and _NAME.fullmatch(name)):
        return None
    return f"{token}/{int(index)}/{name}"


def result_location(token: str, index: int, name: str) -> str:
    """Where the API serves a result: a path, made absolute by whichever API answers."""
    return f"/storage/{token}/{index}/{name}"


class Files(Protocol):
    def put_result(self, token: str, index: int, local: Path, name: str, content_type: str) -> None:
        """Store a result; readers never see half a file."""

    def stat_result(self, token: str, index: str, name: str) -> StoredFile | None: ...

    def read_result(
        self, token: str, index: str, name: str, start: int, end: int
    ) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive."""

    def delete_results(self, token: str) -> None: ...

    def tus_storage(self) -> TusStorage: ...

    def upload_state(self, uid: str) -> UploadState | None: ...

    def fetch_upload(self, uid: str, work_dir: Path) -> Path:
        """A local file holding the upload: in place on disk, or downloaded into ``work_dir``."""

    def describe(self) -> str: ...

    def check(self) -> None:
        """Raise when the store cannot be reached or written."""


class LocalFiles:
    def __init__(self, settings: Settings) -> None:
        self.results = settings.data_dir / "storage"
        self.uploads = settings.data_dir / "uploads"
        self.results.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)

    def put_result(self, token: str, index: int, local: Path, name: str, content_type: str) -> None:
        key = result_path(token, index, name)
        if key is None:
            raise FileError(f"unsafe result name {name!r}")
        target = self.results / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{name}.part")
        shutil.copyfile(local, partial)
        os.replace(partial, target)

    def stat_result(self, token: str, index: str, name: str) -> StoredFile | None:
        key = result_path(token, index, name)
        path = None if key is None else self.results / key
        if path is None or not path.is_file():
            return None
        return StoredFile(size=path.stat().st_size, local_path=path)

    def read_result(
        self, token: str, index: str, name: str, start: int, end: int
    ) -> Iterator[bytes]:
        stored = self.stat_result(token, index, name)
        if stored is None or stored.local_path is None:
            raise FileError("no such result")
        with stored.local_path.open("rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    def delete_results(self, token: str) -> None:
        if is_token(token):
            shutil.rmtree(self.results / token, ignore_errors=True)

    def tus_storage(self) -> TusStorage:
        from tuspyserver.storage.local import LocalFileStorage

        return LocalFileStorage(str(self.uploads))

    def upload_state(self, uid: str) -> UploadState | None:
        if not is_token(uid):
            return None
        try:
            info = json.loads((self.uploads / f"{uid}.info").read_text())
            on_disk = (self.uploads / uid).stat().st_size
        except (OSError, ValueError):
            return None
        size = info.get("size")
        offset = min(int(info.get("offset") or 0), on_disk)
        return UploadState(size=None if size is None else int(size), offset=offset)

    def fetch_upload(self, uid: str, work_dir: Path) -> Path:
        return self.uploads / uid

    def describe(self) -> str:
        return f"folder {self.results.parent.resolve()}"

    def check(self) -> None:
        for folder in (self.results, self.uploads):
            if not os.access(folder, os.W_OK):
                raise FileError(f"{folder} is not writable")
