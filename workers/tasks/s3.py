"""S3-compatible destinations and sources (URLs and clients: ``app.storage.s3``).

Uploads go through boto3's transfer manager (multipart above ``s3_multipart_threshold``).
Permanent errors (a wrong secret, an unknown key, a missing bucket, a refused ACL) fail at once
with the store's own error code in the description.
"""

from __future__ import annotations

from pathlib import Path

from qthumb.app.egress import BlockedAddress
from qthumb.app.qencode.formats import FormatSpec
from qthumb.app.qencode.query import Destination
from qthumb.app.settings import Settings
from qthumb.app.storage.s3 import check_endpoint, error_code, parse_s3_url, s3_client, s3_errors
from qthumb.workers.tasks.failures import FormatFailure, SourceError
from qthumb.workers.tasks.storage import StoredObject


class S3Storage:
    """One destination. ``folder=True`` (the format's kind makes several files): files go
    under the URL's key as a prefix; otherwise the URL's key is the object's full key."""

    def __init__(self, destination: Destination, settings: Settings, folder: bool) -> None:
        try:
            self.location, user, password = parse_s3_url(destination.url, settings)
        except ValueError as exc:
            shown = destination.url.encode("unicode_escape").decode("ascii")
            raise FormatFailure(f"destination {shown}: {exc}") from None
        try:
            check_endpoint(self.location, settings)
        except BlockedAddress as exc:
            raise FormatFailure(f"destination {destination.url}: {exc}") from None
        self.destination = destination
        self.folder = folder
        self.settings = settings
        self.client = s3_client(
            self.location, destination.key or user, destination.secret or password, settings
        )
        from boto3.s3.transfer import TransferConfig

        self.transfer = TransferConfig(
            multipart_threshold=settings.s3_multipart_threshold,
            multipart_chunksize=settings.s3_multipart_threshold,
            use_threads=True,
            max_concurrency=4,
        )

    def object_key(self, name: str) -> str:
        if not self.folder:
            return self.location.key or name
        prefix = self.location.key.strip("/")
        return f"{prefix}/{name}" if prefix else name

    def put(self, local: Path, name: str, content_type: str) -> StoredObject:
        key = self.object_key(name)
        extra: dict[str, str] = {"ContentType": content_type}
        if self.destination.permissions:
            extra["ACL"] = self.destination.permissions
        if self.destination.storage_class:
            extra["StorageClass"] = self.destination.storage_class
        if self.destination.cache_control:
            extra["CacheControl"] = self.destination.cache_control
        try:
            self.client.upload_file(
                str(local), self.location.bucket, key, ExtraArgs=extra, Config=self.transfer
            )
        except s3_errors() as exc:
            # boto3 wraps the store's ClientError while uploading: report the store's own code
            inner = exc.__cause__ or exc.__context__
            cause = inner if isinstance(inner, s3_errors()[0]) else exc
            raise FormatFailure(
                f"destination {self.location.describe(key)}: {error_code(cause)}"
            ) from None
        return StoredObject(
            location=self.location.url(key),
            storage={
                "type": "amazon_s3" if self.location.is_aws else "custom_s3",
                "host": self.location.host,
                "bucket": self.location.bucket,
                "key": key,
                # the endpoint's own scheme and port (defaults spelled out), the file's format
                "scheme": "https" if self.location.secure else "http",
                "port": self.location.port or (443 if self.location.secure else 80),
                "format": key.rsplit(".", 1)[-1].lower() if "." in key.rsplit("/", 1)[-1] else None,
            },
        )


def download_s3(source: str, target: Path, settings: Settings) -> int:
    """Fetch an ``s3://`` source; credentials from the URL's user-info, else from
    ``QTHUMB_S3_CREDENTIALS`` for its endpoint."""
    try:
        location, user, password = parse_s3_url(source, settings)
    except ValueError as exc:
        raise SourceError(f"source: {exc}") from None
    try:
        check_endpoint(location, settings)
    except BlockedAddress as exc:
        raise SourceError(f"source {location.describe()}: {exc}") from None
    if user is None:
        known = settings.s3_credentials.get(location.netloc) or {}
        user, password = known.get("key"), known.get("secret")
    client = s3_client(location, user, password, settings)
    try:
        head = client.head_object(Bucket=location.bucket, Key=location.key)
        size = int(head.get("ContentLength") or 0)
        if size > settings.max_source_bytes:
            raise SourceError(
                f"source {location.describe()}: {size} bytes is over the limit of "
                f"{settings.max_source_bytes} bytes"
            )
        client.download_file(location.bucket, location.key, str(target))
    except s3_errors() as exc:
        raise SourceError(f"source {location.describe()}: {error_code(exc)}") from None
    return target.stat().st_size


def destination_storage(
    spec: FormatSpec, destination: Destination, settings: Settings
) -> S3Storage:
    """The storage for a destination the query names (only s3:// ones are supported)."""
    if destination.url.lower().startswith("s3://"):
        return S3Storage(destination, settings, folder=spec.folder)
    if "://" not in destination.url:
        raise FormatFailure(f"destination {destination.url[:200]!r} is not a URL")
    scheme = destination.url.split(":", 1)[0]
    raise FormatFailure(
        f"destination {destination.url}: {scheme}:// destinations are not supported; "
        "use s3:// (any S3-compatible store) or no destination"
    )
