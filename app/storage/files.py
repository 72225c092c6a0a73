"""qthumb's own files: temporary results (docs/compatibility.md) and tus uploads, in the data dir
or in an S3 bucket (``QTHUMB_STORAGE_URL``): two ``Objects`` (``app.storage.objects``) used by the
worker (put a result, read an upload), the ``/storage`` route (stat, read a range), the console and
the recovery sweep (delete).

The one owner of the layout:

    storage/<task_token>/<format index>/<file>     results, served at /storage/… by the API
    uploads/<uuid> (+ tuspyserver's .info)         tus uploads

In a bucket the same names sit under ``s3://host/bucket/prefix/``. An API replica then serves
what any worker wrote, and a worker reads an upload any replica received.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qthumb.app.settings import Settings
from qthumb.app.storage.objects import FileError, LocalObjects, Location, Objects, read_all
from qthumb.app.tokens import is_token

if TYPE_CHECKING:  # tuspyserver brings FastAPI: imported where uploads are served, not here
    from tuspyserver.storage import TusStorage

__all__ = [
    "FileError",
    "Files",
    "UploadState",
    "open_files",
    "result_key",
    "result_location",
    "result_path",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_INDEX = re.compile(r"[0-9]{1,6}")  # ASCII digits: "²".isdigit() is true, int("²") fails
_INFO_BYTES = 1024 * 1024  # tuspyserver's .info is a few hundred bytes


@dataclass(frozen=True)
class UploadState:
    size: int | None  # None: the client has not said yet (Upload-Defer-Length)
    offset: int


def result_path(token: str, index: int | str, name: str) -> str | None:
    """``<token>/<index>/<name>`` when all three are safe to use as a key or a path."""
    if not (is_token(token) and _INDEX.fullmatch(str(index)) and _NAME.fullmatch(name)):
        return None
    return f"{token}/{int(index)}/{name}"


_SERVED = "/storage/"  # where the API serves results (app.api.storage_routes)


def result_location(token: str, index: int, name: str) -> Location:
    """Where the API serves a result: a path, made absolute by whichever API answers."""
    return Location(on_api=f"{_SERVED}{token}/{index}/{name}")


def result_key(location: Location) -> str | None:
    """The key of a result ``result_location`` placed, or None for any other location."""
    parts = location.on_api.removeprefix(_SERVED).split("/", 2)
    if not location.on_api.startswith(_SERVED) or len(parts) != 3:
        return None
    return result_path(*parts)


class Files:
    """qthumb's own files, two ``Objects`` in the same place: ``results`` (keys
    ``<token>/<index>/<name>``, served at ``/storage``) and ``uploads`` (``<uuid>`` and
    tuspyserver's ``<uuid>.info``, written by tuspyserver's storage of the same place)."""

    def __init__(
        self, results: Objects, uploads: Objects, tus: Callable[[], TusStorage], where: str
    ) -> None:
        self.results, self.uploads, self._tus, self.where = results, uploads, tus, where

    def tus_storage(self) -> TusStorage:
        return self._tus()

    def upload_state(self, uid: str) -> UploadState | None:
        if not is_token(uid):
            return None
        data = read_all(self.uploads, f"{uid}.info", _INFO_BYTES)
        try:
            info = json.loads(data) if data is not None else None
        except ValueError:
            return None
        if not isinstance(info, dict):
            return None
        offset = int(info.get("offset") or 0)
        stored = self.uploads.stat(uid)
        if stored is not None:  # a folder's file grows chunk by chunk: what is really there
            offset = min(offset, stored.size)
        size = info.get("size")
        return UploadState(size=None if size is None else int(size), offset=offset)

    def fetch_upload(self, uid: str, work_dir: Path) -> Path:
        """A local file holding the upload: in place on disk, or downloaded into ``work_dir``."""
        return self.uploads.get(uid, work_dir / "source")

    def delete_results(self, token: str) -> None:
        if is_token(token):
            self.results.delete(token)

    def delete_upload(self, uid: str) -> None:
        """A tus upload and tuspyserver's notes on it."""
        if uid and "/" not in uid and not uid.startswith("."):
            self.uploads.remove(uid)
            self.uploads.remove(f"{uid}.info")

    def describe(self) -> str:
        return self.where

    def check(self) -> None:
        self.results.check()
        self.uploads.check()


def open_files(settings: Settings) -> Files:
    """The data dir's ``storage/`` and ``uploads/``, or the same under the bucket and prefix
    of ``QTHUMB_STORAGE_URL``."""
    if not settings.storage_url:
        uploads = settings.data_dir / "uploads"

        def local_tus() -> TusStorage:
            from tuspyserver.storage.local import LocalFileStorage

            return LocalFileStorage(str(uploads))

        return Files(
            LocalObjects(settings.data_dir / "storage"),
            LocalObjects(uploads),
            local_tus,
            f"folder {settings.data_dir.resolve()}",
        )
    # boto3 only where a bucket is used
    from qthumb.app.storage.s3 import OPERATOR, credentials, parse_s3_url
    from qthumb.app.storage.s3_objects import S3Objects

    # the operator's own bucket: its entry in QTHUMB_S3_CREDENTIALS, else the process's own
    # identity; reached wherever it is (no egress check: the operator named it)
    location, user, password = parse_s3_url(settings.storage_url, settings)
    creds = credentials(location, user, password, settings, OPERATOR)
    prefix = location.key.strip("/")
    results, in_bucket = (
        S3Objects(location, creds, settings, None, prefix=f"{prefix}/{folder}".lstrip("/"))
        for folder in ("storage", "uploads")
    )

    def s3_tus() -> TusStorage:
        from tuspyserver.storage.s3 import S3Storage as TusS3Storage

        return TusS3Storage(in_bucket.bucket, in_bucket.client, prefix=in_bucket.prefix + "/")

    return Files(results, in_bucket, s3_tus, f"bucket {location.describe(prefix)}")
