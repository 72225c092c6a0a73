"""S3 primitives shared by every part that talks to an S3-compatible store: ``s3://`` URLs
and boto3 clients. The one module that builds boto3 clients (one per endpoint, credentials and
process); ``app.storage.s3_objects`` (qthumb's own store in a bucket, and S3 destinations) and
S3 sources (``workers.tasks.sources``) use it.

``s3://host[:port]/bucket/key`` is path-style: the host is the endpoint. HTTPS unless the
``host:port`` is listed in ``QTHUMB_S3_INSECURE_ENDPOINTS``. botocore's standard retry mode
retries timeouts, throttling and 5xx with backoff, ``s3_max_attempts`` times at most.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
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
    """Refuse endpoints that resolve to non-public addresses (unless allowed), before any
    work is done for them; every request is checked again and sent to the address checked
    then (``app.storage.s3_pinning``)."""
    policy.resolve(location.host, location.port or (443 if location.secure else 80))


OPERATOR = None  # whom qthumb itself acts for: its own store, the offline commands


class NoCredentials(ValueError):
    """A destination no credentials may be used for; the message says where they could come
    from."""


@dataclass(frozen=True)
class S3Credentials:
    """What requests to a bucket are signed with: a key and secret, the process's own identity
    (``ambient``: only for the operator or an ``"ambient"`` entry), or nothing (unsigned: a
    bucket anyone may read)."""

    key: str | None = None
    secret: str | None = None
    ambient: bool = False

    @property
    def anonymous(self) -> bool:
        return self.key is None and not self.ambient

    def cache_key(self) -> tuple[object, ...]:
        """Names the credentials without holding the secret."""
        secret = hashlib.sha256((self.secret or "").encode()).hexdigest()
        return (self.key, secret, self.ambient)


def credentials(
    location: S3Location,
    key: str | None,
    secret: str | None,
    settings: Settings,
    api_key: str | None,
) -> S3Credentials:
    """What a request for ``api_key`` (``OPERATOR``: qthumb itself) signs with at
    ``location``: the ``key``/``secret`` it carries; else the ``QTHUMB_S3_CREDENTIALS`` entry
    for that bucket or endpoint that ``api_key`` may use; else, for the operator only, the
    process's own identity; else none (unsigned requests). A query never gets the process's
    own identity unless an entry names it ``"ambient"``: a service lends its role to no
    resource its caller names (the confused deputy)."""
    if key or secret:
        if not (key and secret):
            raise NoCredentials("a key needs its secret, and a secret its key")
        return S3Credentials(key, secret)
    grant = settings.s3_grant(location.netloc, location.bucket, api_key)
    if grant is not None:
        return (
            S3Credentials(None, None, True)
            if grant.ambient
            else S3Credentials(grant.key, grant.secret)
        )
    return S3Credentials(None, None, ambient=api_key is OPERATOR)


def no_credentials_hint(location: S3Location) -> str:
    return (
        f"no credentials: the query carries no key and secret, and QTHUMB_S3_CREDENTIALS has "
        f"no entry for {location.netloc} (or {location.netloc}/{location.bucket}) that this "
        "API key may use; qthumb never signs a query's request with its own identity"
    )


# boto3 clients kept at once (each holds its credentials): least recently used out
MAX_CLIENTS = 64
_CLIENTS: OrderedDict[tuple[object, ...], Any] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()


def s3_client(
    location: S3Location, creds: S3Credentials, settings: Settings, egress: EgressPolicy | None
) -> Any:
    """One client per endpoint, credentials and process: built on first use (so after any
    fork: a forked child builds its own), then shared by every thread (boto3 clients are
    thread-safe) and every task of the process; at most ``MAX_CLIENTS`` kept, so neither
    clients nor the secrets they hold pile up on a server used with many credentials.
    ``egress``: the policy every connection is checked against and pinned to
    (``app.storage.s3_pinning``); ``None`` for qthumb's own store only."""
    knobs = (settings.s3_max_attempts, settings.s3_connect_timeout, settings.s3_read_timeout)
    cache_key = (os.getpid(), location.endpoint, location.region, creds.cache_key(), knobs, egress)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(cache_key)
        if client is not None:
            _CLIENTS.move_to_end(cache_key)
            return client
    client = _new_client(location, creds, settings, egress)
    with _CLIENTS_LOCK:
        _CLIENTS[cache_key] = client
        while len(_CLIENTS) > MAX_CLIENTS:
            _CLIENTS.popitem(last=False)
    return client


def clients_cached() -> int:
    """boto3 clients this process keeps (at most ``MAX_CLIENTS``)."""
    with _CLIENTS_LOCK:
        return len(_CLIENTS)


def _new_client(
    location: S3Location, creds: S3Credentials, settings: Settings, egress: EgressPolicy | None
) -> Any:
    # boto3 takes a quarter of a second to import: only where a bucket is used (the offline
    # commands on local files start without it)
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        signature_version=UNSIGNED if creds.anonymous else "s3v4",
        retries={"max_attempts": settings.s3_max_attempts, "mode": "standard"},
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    signed = (
        {}
        if creds.ambient or creds.anonymous
        else {
            "aws_access_key_id": creds.key,
            "aws_secret_access_key": creds.secret,
        }
    )
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=location.endpoint,
        region_name=location.region,
        config=config,
        **signed,
    )
    if egress is not None:
        from qthumb.app.storage.s3_pinning import pin_connections

        pin_connections(client, egress, settings.s3_connect_timeout, settings.s3_read_timeout)
    return client


def s3_errors() -> tuple[type[Exception], ...]:
    """What boto3 raises for a store's refusal or a broken connection (imported lazily)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return ClientError, BotoCoreError, Boto3Error


_MISSING = {"404", "NoSuchKey", "NotFound"}
_THROTTLED = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "InternalError",
}


def is_missing(exc: Exception) -> bool:
    """The store said there is no such object (and nothing else)."""
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code")) in (
        _MISSING
    )


def is_transient(exc: Exception) -> bool:
    """The store did not answer as a store: a 5xx or throttling, or no answer at all (a
    timeout, a refused or broken connection)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, SSLError

    if isinstance(exc, SSLError):  # a certificate fails the same way every time
        return False
    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return int(status) >= 500 or str(exc.response.get("Error", {}).get("Code")) in _THROTTLED


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
