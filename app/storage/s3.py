"""S3 primitives shared by every part that talks to an S3-compatible store: ``s3://`` URLs
and boto3 clients. The one module that builds boto3 clients (one per endpoint, credentials and
process); ``app.storage.s3_objects`` (qthumb's own store in a bucket, and S3 destinations) and
S3 sources (``workers.tasks.sources``) use it.

``s3://host[:port]/bucket/key`` is path-style: the host is the endpoint (§4). HTTPS unless the
``host:port`` is listed in ``QTHUMB_S3_INSECURE_ENDPOINTS``. botocore's standard retry mode
retries timeouts, throttling and 5xx with backoff, ``s3_max_attempts`` times at most.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from qthumb.app.egress import EgressPolicy
from qthumb.app.settings import Settings

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


def check_endpoint(location: S3Location, policy: EgressPolicy) -> None:
    """Refuse endpoints that resolve to non-public addresses (unless allowed). botocore
    resolves the name again when it connects: a DNS answer that changes in between is not
    caught here, unlike sources and callbacks, which connect to the checked address."""
    policy.resolve(location.host, location.port or (443 if location.secure else 80))


def credentials(
    location: S3Location, key: str | None, secret: str | None, settings: Settings
) -> tuple[str | None, str | None]:
    """The URL's own ``key:secret`` when it has one, else ``QTHUMB_S3_CREDENTIALS``' for its
    endpoint (none: boto3's own chain, environment and instance roles)."""
    if key is not None:
        return key, secret
    known = settings.s3_credentials.get(location.netloc) or {}
    return known.get("key"), known.get("secret")


_CLIENTS: dict[tuple[object, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def s3_client(location: S3Location, key: str | None, secret: str | None, settings: Settings) -> Any:
    """One client per endpoint, credentials and process: built on first use (so after any
    fork: a forked child builds its own), then shared by every thread (boto3 clients are
    thread-safe) and every task of the process."""
    knobs = (settings.s3_max_attempts, settings.s3_connect_timeout, settings.s3_read_timeout)
    cache_key = (os.getpid(), location.endpoint, location.region, key, secret, knobs)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(cache_key)
        if client is None:
            client = _CLIENTS[cache_key] = _new_client(location, key, secret, settings)
        return client


def _new_client(
    location: S3Location, key: str | None, secret: str | None, settings: Settings
) -> Any:
    # boto3 takes a quarter of a second to import: only where a bucket is used (the offline
    # commands on local files start without it)
    import boto3
    from botocore.config import Config

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


def s3_errors() -> tuple[type[Exception], ...]:
    """What boto3 raises for a store's refusal or a broken connection (imported lazily)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return ClientError, BotoCoreError, Boto3Error


def error_code(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(
            error.get("Code")
            or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "error")
        )
        message = error.get("Message")
        return f"{code} ({message})" if message and message != code else code
    return f"{type(exc).__name__}: {exc}"
