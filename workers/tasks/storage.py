"""Where one format's files go in one destination: ``Storage``, a place (``Objects``:
a folder or a bucket, ``app.storage.objects``) and the format's layout in it.

The layouts: qthumb's own temporary storage (``temporary_storage``: ``<token>/<index>/<name>``
in ``app.storage.files``' results, reported as ``/storage/…``, a location each API makes
absolute with its own public URL, docs/compatibility.md); a user's bucket (``workers.tasks.s3``); a
folder on this machine (the offline commands). A kind that makes several files
(``FormatSpec.folder``) puts them under a prefix; one that makes one file may be given its exact
key instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qthumb.app.storage.files import Files, result_location
from qthumb.app.storage.objects import FileError, LocalObjects, Location, Objects
from qthumb.workers.failures import FormatFailure, store_failure


@dataclass(frozen=True)
class StoredObject:
    location: Location
    storage: dict[str, Any] | None


@dataclass(frozen=True)
class Storage:
    objects: Objects
    prefix: str = ""  # files go under this key prefix, by their own names
    single: str | None = None  # or: the one file takes exactly this key
    # The location a result reports, by key (default: where the object is)
    located: Callable[[str], Location] | None = None
    report_storage: bool = True  # the storage object in images[]/videos[] (docs/compatibility.md)
    label: str = ""  # how a failure names the place ("destination ")
    put_keys: list[str] = field(default_factory=list)  # what this attempt stored here

    def key(self, name: str) -> str:
        if self.single:
            return self.single
        return f"{self.prefix.strip('/')}/{name}" if self.prefix.strip("/") else name

    def put(self, local: Path, name: str, content_type: str) -> StoredObject:
        key = self.key(name)
        try:
            self.objects.put(key, local, content_type)
        except FileError as exc:
            raise store_failure(FormatFailure, self.label, exc) from None
        self.put_keys.append(key)
        return StoredObject(
            location=(self.located or self.objects.location)(key),
            storage=self.objects.storage_info(key) if self.report_storage else None,
        )

    def discard(self) -> list[str]:
        """Remove what this attempt stored here (a destination is whole or absent); the keys
        that could not be removed."""
        left = []
        for key in self.put_keys:
            try:
                self.objects.remove(key)
            except FileError:
                left.append(key)
        self.put_keys.clear()
        return left


def temporary_storage(files: Files, token: str, index: int) -> Storage:
    """Results of a format with no destination, removed after ``storage_ttl``."""
    return Storage(
        files.results,
        prefix=f"{token}/{index}",
        located=lambda key: result_location(token, index, key.rsplit("/", 1)[-1]),
        report_storage=False,
    )


def folder_storage(folder: Path, single: Path | None = None) -> Storage:
    """Files into a folder on this machine (the offline commands), each under its final name
    only when whole. ``single``: the one file a ``thumbnail`` makes takes exactly that path."""
    if single is not None:
        return Storage(LocalObjects(single.parent, create=False), single=single.name)
    return Storage(LocalObjects(folder, create=False))
