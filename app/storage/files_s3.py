"""qthumb's own files in a bucket (``QTHUMB_STORAGE_URL=s3://…``): temporary results and tus
uploads, in the layout ``app.storage.files`` owns, for several machines with no shared disk. Its own
module so that boto3 is imported only where a bucket is used."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from qthumb.app.settings import Settings
from qthumb.app.storage.files import (
    CHUNK,
    FileError,
    StoredFile,
    UploadState,
    result_path,
)
from qthumb.app.storage.s3 import S3Location, parse_s3_url, s3_client
from qthumb.app.tasks.model import is_token

if TYPE_CHECKING:
    from tuspyserver.storage import TusStorage


class S3Files:
    """The same layout in a bucket. The API streams results from it (``/storage`` keeps its
    URLs, Range and CORS, and the bucket need not be reachable by clients)."""

    def __init__(self, settings: Settings) -> None:
        location, user, password = parse_s3_url(settings.storage_url, settings)
        if user is None:
            known = settings.s3_credentials.get(location.netloc) or {}
            user, password = known.get("key"), known.get("secret")
        self.location: S3Location = location
        self.prefix = location.key.strip("/")
        self.client = s3_client(location, user, password, settings)

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def put_result(self, token: str, index: int, local: Path, name: str, content_type: str) -> None:
        key = result_path(token, index, name)
        if key is None:
            raise FileError(f"unsafe result name {name!r}")
        try:  # one PUT (or multipart) creates the object whole: nobody sees half of it
            self.client.upload_file(
                str(local),
                self.location.bucket,
                self._key("storage", key),
                ExtraArgs={"ContentType": content_type},
            )
        except (ClientError, BotoCoreError) as exc:
            raise FileError(f"temporary storage {self.describe()}: {exc}") from None

    def stat_result(self, token: str, index: str, name: str) -> StoredFile | None:
        key = result_path(token, index, name)
        if key is None:
            return None
        try:
            head = self.client.head_object(
                Bucket=self.location.bucket, Key=self._key("storage", key)
            )
        except ClientError:
            return None
        return StoredFile(size=int(head["ContentLength"]))

    def read_result(
        self, token: str, index: str, name: str, start: int, end: int
    ) -> Iterator[bytes]:
        key = result_path(token, index, name)
        if key is None:
            raise FileError("no such result")
        reply = self.client.get_object(
            Bucket=self.location.bucket, Key=self._key("storage", key), Range=f"bytes={start}-{end}"
        )
        body = reply["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def delete_results(self, token: str) -> None:
        if not is_token(token):
            return
        prefix = self._key("storage", token) + "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=prefix
        )
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(
                    Bucket=self.location.bucket, Delete={"Objects": keys, "Quiet": True}
                )

    def tus_storage(self) -> TusStorage:
        from tuspyserver.storage.s3 import S3Storage as TusS3Storage

        return TusS3Storage(self.location.bucket, self.client, prefix=self._key("uploads") + "/")

    def upload_state(self, uid: str) -> UploadState | None:
        if not is_token(uid):
            return None
        try:
            body = self.client.get_object(
                Bucket=self.location.bucket, Key=self._key("uploads", f"{uid}.info")
            )["Body"].read()
            info: dict[str, Any] = json.loads(body)
        except (ClientError, ValueError):
            return None
        size = info.get("size")
        return UploadState(size=None if size is None else int(size), offset=int(info["offset"]))

    def fetch_upload(self, uid: str, work_dir: Path) -> Path:
        target = work_dir / "source"
        try:
            self.client.download_file(self.location.bucket, self._key("uploads", uid), str(target))
        except (ClientError, BotoCoreError) as exc:
            raise FileError(f"the upload could not be read from the bucket ({exc})") from None
        return target

    def describe(self) -> str:
        return f"bucket {self.location.describe(self.prefix)}"

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.location.bucket)
