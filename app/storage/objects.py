"""One interface for every place qthumb keeps files: ``Objects``, files by key (``a/b/c.png``)
that can be put, fetched, read, looked at, deleted and located.

Two implementations: a folder on this machine (``LocalObjects``, here) and an S3 bucket under a
key prefix (``app.storage.s3_objects.S3Objects``, its own module so that boto3 is imported only
where a bucket is used). Everything that stores files is one of them: qthumb's own results and
tus uploads (``app.storage.files``, served at ``/storage`` and purged by the sweep), a user's S3
destination, and the offline commands' output folders (``workers.tasks.storage`` lays a
format's files out in either).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CHUNK = 1024 * 1024


class FileError(Exception):
    """The store could not be read or written; the message says which object and why."""


class StoreUnavailable(FileError):
    """The store did not answer as a store (a 5xx, throttling, a timeout, a refused or broken
    connection): nothing is known of the object, and another try may pass. Never read as
    "not there"."""


@dataclass(frozen=True)
class Location:
    """Where a stored file is, told by its type: ``on_api``, a path on whichever API serves
    qthumb's temporary storage (``/storage/…``), made absolute at the edge from that API's own
    public URL, so no worker needs to know it; or ``url``, absolute already (a user's bucket;
    a ``file:`` URI offline). Exactly one is set."""

    url: str = ""
    on_api: str = ""

    def absolute(self, base_url: str | None) -> str:
        """The URL a client is given: a path on the API under ``base_url`` (the public URL of
        the API answering; None: the path as it is), an absolute URL as it is."""
        if self.on_api and base_url is not None:
            return f"{base_url.rstrip('/')}{self.on_api}"
        return self.on_api or self.url

    @classmethod
    def from_json(cls, value: object) -> Location:
        """As ``dataclasses.asdict`` wrote it; or one string, as task rows held it before
        locations were typed: a result path on the API, or an absolute URL."""
        if isinstance(value, dict):
            return cls(url=str(value.get("url") or ""), on_api=str(value.get("on_api") or ""))
        text = str(value or "")
        return cls(on_api=text) if text.startswith("/storage/") else cls(url=text)


@dataclass(frozen=True)
class ObjectStat:
    size: int
    local_path: Path | None = None  # set when the object is a file on this machine's disk


class Objects(Protocol):
    def put(self, key: str, local: Path, content_type: str) -> None:
        """Store ``local`` under ``key``, whole: readers never see half of it."""

    def get(self, key: str, target: Path) -> Path:
        """A file on this disk with the object's bytes: the object itself when it is one,
        else ``target``, downloaded."""

    def open(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive."""

    def stat(self, key: str) -> ObjectStat | None:
        """``None`` when there is no such object; ``StoreUnavailable`` when the store cannot
        say, ``FileError`` when it refuses to."""

    def delete(self, prefix: str) -> None:
        """Every object under ``prefix/``."""

    def remove(self, key: str) -> None:
        """One object, if it is there."""

    def location(self, key: str) -> Location:
        """Where the object is, as an absolute URL (``file:``, or the bucket's endpoint)."""

    def storage_info(self, key: str) -> dict[str, Any] | None:
        """Qencode's ``storage`` object for it (docs/compatibility.md), ``None`` for a folder."""

    def describe(self) -> str: ...

    def check(self) -> None:
        """Raise when the store cannot be reached or written."""


def read_all(objects: Objects, key: str, limit: int) -> bytes | None:
    """A small object's bytes; ``None`` when it is missing or over ``limit``; a store that
    cannot be read raises (``FileError``, ``StoreUnavailable``)."""
    stat = objects.stat(key)
    if stat is None or stat.size > limit:
        return None
    if stat.size == 0:
        return b""
    return b"".join(objects.open(key, 0, stat.size - 1))


class LocalObjects:
    """Objects as files under ``root``; a key's ``/`` are folders. A file appears under its
    name only when whole (written beside it, then renamed in the same folder)."""

    def __init__(self, root: Path, create: bool = True) -> None:
        self.root = root
        if create:
            root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        parts = key.split("/")
        if any(p in ("", ".", "..") or "\x00" in p for p in parts):
            raise FileError(f"{key!r} is not a key (empty, '.' or '..' part)")
        return self.root.joinpath(*parts)

    def put(self, key: str, local: Path, content_type: str) -> None:
        final = self.path(key)
        partial = final.with_name(f".{final.name}.partial")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, partial)
            os.replace(partial, final)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise FileError(f"{final}: {exc.strerror or exc}") from None

    def get(self, key: str, target: Path) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise FileError(f"{path}: no such file")
        return path

    def open(self, key: str, start: int, end: int) -> Iterator[bytes]:
        try:
            f = self.path(key).open("rb")
        except OSError as exc:
            raise FileError(f"{key}: {exc.strerror or exc}") from None
        with f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    def stat(self, key: str) -> ObjectStat | None:
        try:
            path = self.path(key)
            size = path.stat().st_size if path.is_file() else None
        except (FileError, OSError):
            return None
        return None if size is None else ObjectStat(size=size, local_path=path)

    def delete(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix.strip("/")), ignore_errors=True)

    def remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def location(self, key: str) -> Location:
        return Location(url=self.path(key).resolve().as_uri())

    def storage_info(self, key: str) -> dict[str, Any] | None:
        return None

    def describe(self) -> str:
        return f"folder {self.root.resolve()}"

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise FileError(f"{self.root} is not writable")
