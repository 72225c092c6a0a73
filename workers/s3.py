"""S3-compatible destinations and sources, through boto3 (the only module that knows it).

``s3://host[:port]/bucket/key`` is path-style: the host is the endpoint (§4). HTTPS unless the
``host:port`` is listed in ``QTHUMB_S3_INSECURE_ENDPOINTS``. Uploads go through boto3's transfer
manager (multipart above ``s3_multipart_threshold``); botocore's standard retry mode retries
timeouts, throttling and 5xx with backoff, ``s3_max_attempts`` times at most. Permanent errors
(a wrong secret, an unknown key, a missing bucket, a refused ACL) fail at once with the store's
own error code in the description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.egress import BlockedAddress, EgressPolicy
from app.query import Destination
from app.settings import Settings
from workers.failures import FormatFailure, SourceError
from workers.storage import StoredObject

_AWS_REGION = re.compile(r"^s3[.-]([a-z0-9-]+)\.amazonaws\.com$")
# S3's own rule (3-63 lowercase letters, digits, '.', '-') relaxed as compatible stores and
# legacy AWS buckets are (upper case, '_'), and left to the store to refine; what matters here
# is that no bucket is '.', '..' or holds a '/' or a control character.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_DO_REGION = re.compile(r"^([a-z0-9-]+)\.digitaloceanspaces\.com$")


@dataclass(frozen=True)
class S3Location:
    host: str  # without the port
    port: int | None
    bucket: str
    key: str  # may be "" or a folder prefix
    secure: bool

    @property
    def netloc(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.netloc}"

    @property
    def region(self) -> str:
        for pattern in (_AWS_REGION, _DO_REGION):
            match = pattern.match(self.host)
            if match:
                return match.group(1)
        return "us-east-1"

    @property
    def is_aws(self) -> bool:
        return self.host.endswith(".amazonaws.com")

    def url(self, key: str) -> str:
        return f"{self.endpoint}/{self.bucket}/{key}"

    def describe(self, key: str | None = None) -> str:
        return f"s3://{self.netloc}/{self.bucket}/{self.key if key is None else key}"


def parse_s3_url(url: str, settings: Settings) -> tuple[S3Location, str | None, str | None]:
    """The location and any ``key:secret`` user-info of an ``s3://`` URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3" or not parts.hostname:
        raise ValueError(f"{url!r} is not an s3://host/bucket/key URL")
    bucket, _, key = parts.path.lstrip("/").partition("/")
    if not bucket:
        raise ValueError(f"{url!r} names no bucket (s3://host/bucket/key)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} has a bad port") from None
    key, bucket = unquote(key), unquote(bucket)
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        shown = bucket.encode("unicode_escape").decode("ascii")[:100]
        raise ValueError(
            f"the bucket {shown!r} is not a bucket name (a letter or digit, then letters, "
            "digits, '.', '-', '_'; no '..')"
        )
    if any(ord(c) < 32 for c in url + key):
        raise ValueError("the URL holds a control character (NUL, newline…)")
    if key.startswith("/") or any(seg in (".", "..") for seg in key.split("/")):
        raise ValueError("the key may not start with / or hold . or .. segments")
    netloc = parts.hostname if port is None else f"{parts.hostname}:{port}"
    insecure = {e.lower() for e in settings.s3_insecure_endpoints}
    location = S3Location(
        host=parts.hostname,
        port=port,
        bucket=bucket,
        key=key,
        secure=netloc.lower() not in insecure,
    )
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return location, user, password


def _check_endpoint(location: S3Location, settings: Settings) -> None:
    """Refuse endpoints that resolve to non-public addresses (unless allowed). botocore
    resolves the name again when it connects: a DNS answer that changes in between is not
    caught here, unlike sources and callbacks, which connect to the checked address."""
    policy = EgressPolicy.from_cidrs(settings.allowed_networks)
    policy.resolve(location.host, location.port or (443 if location.secure else 80))


def _client(location: S3Location, key: str | None, secret: str | None, settings: Settings) -> Any:
    config = Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        retries={"max_attempts": settings.s3_max_attempts, "mode": "standard"},
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=location.endpoint,
        region_name=location.region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=config,
    )


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(
            error.get("Code")
            or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "error")
        )
        message = error.get("Message")
        return f"{code} ({message})" if message and message != code else code
    return f"{type(exc).__name__}: {exc}"


class S3Storage:
    """One destination. ``folder=True`` (``thumbnails``): files go under the URL's key as a
    prefix; otherwise (``thumbnail``) the URL's key is the object's full key."""

    def __init__(self, destination: Destination, settings: Settings, folder: bool) -> None:
        try:
            self.location, user, password = parse_s3_url(destination.url, settings)
        except ValueError as exc:
            shown = destination.url.encode("unicode_escape").decode("ascii")
            raise FormatFailure(f"destination {shown}: {exc}") from None
        try:
            _check_endpoint(self.location, settings)
        except BlockedAddress as exc:
            raise FormatFailure(f"destination {destination.url}: {exc}") from None
        self.destination = destination
        self.folder = folder
        self.settings = settings
        self.client = _client(
            self.location, destination.key or user, destination.secret or password, settings
        )
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
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            # boto3 wraps the store's ClientError while uploading: report the store's own code
            inner = exc.__cause__ or exc.__context__
            cause = inner if isinstance(inner, ClientError) else exc
            raise FormatFailure(
                f"destination {self.location.describe(key)}: {_error_code(cause)}"
            ) from None
        return StoredObject(
            url=self.location.url(key),
            storage={
                "type": "amazon_s3" if self.location.is_aws else "custom_s3",
                "host": self.location.host,
                "bucket": self.location.bucket,
                "key": key,
                "scheme": "s3",
                "port": self.location.port,
                "format": None,
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
        _check_endpoint(location, settings)
    except BlockedAddress as exc:
        raise SourceError(f"source {location.describe()}: {exc}") from None
    if user is None:
        known = settings.s3_credentials.get(location.netloc) or {}
        user, password = known.get("key"), known.get("secret")
    client = _client(location, user, password, settings)
    try:
        head = client.head_object(Bucket=location.bucket, Key=location.key)
        size = int(head.get("ContentLength") or 0)
        if size > settings.max_source_bytes:
            raise SourceError(
                f"source {location.describe()}: {size} bytes is over the limit of "
                f"{settings.max_source_bytes} bytes"
            )
        client.download_file(location.bucket, location.key, str(target))
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise SourceError(f"source {location.describe()}: {_error_code(exc)}") from None
    return target.stat().st_size
