"""S3-compatible destinations and sources: the URL a query names made into ``Objects`` in
that bucket (``app.storage.s3_objects``), after the endpoint's address is checked against the
egress policy. Permanent errors (a wrong secret, an unknown key, a missing bucket, a refused
ACL) fail at once with the store's own error code in the description; a store that is down
fails as transient, naming the store. A query's bucket is reached only with the credentials
the query carries or an operator's entry allows its API key (``app.storage.s3.credentials``),
never with the server's own identity.
"""

from __future__ import annotations

from pathlib import Path

from qthumb.app.egress import BlockedAddress
from qthumb.app.qencode.formats import FormatSpec
from qthumb.app.qencode.query import Destination
from qthumb.app.settings import Settings
from qthumb.app.storage.objects import FileError
from qthumb.app.storage.s3 import (
    check_endpoint,
    credentials,
    no_credentials_hint,
    parse_s3_url,
)
from qthumb.app.storage.s3_objects import LateDownload, S3Objects
from qthumb.workers.failures import FormatFailure, SourceError, store_failure
from qthumb.workers.tasks.storage import Storage


def download_s3(source: str, target: Path, settings: Settings, api_key: str | None) -> int:
    """Fetch an ``s3://`` source for ``api_key`` (``OPERATOR``: qthumb's own commands), with
    the credentials ``app.storage.s3.credentials`` allows it (none: unsigned requests, which a
    public bucket answers). The size cap fails closed: a store that cannot say how large the
    object is fails the source."""
    try:
        location, user, password = parse_s3_url(source, settings)
        creds = credentials(location, user, password, settings, api_key)
    except ValueError as exc:
        raise SourceError(f"source: {exc}") from None
    try:
        check_endpoint(location, settings.egress)
    except BlockedAddress as exc:
        raise SourceError(f"source {location.describe()}: {exc}") from None
    bucket = S3Objects(location, creds, settings, settings.egress)
    hint = f" ({no_credentials_hint(location)})" if creds.anonymous else ""
    try:
        stored = bucket.stat(location.key)
        if stored is None:
            raise SourceError(f"source {location.describe()}: NoSuchKey (no such object)")
        if stored.size > settings.max_source_bytes:
            raise SourceError(
                f"source {location.describe()}: {stored.size} bytes is over the limit of "
                f"{settings.max_source_bytes} bytes"
            )
        # a refused key says so here, with its code; a trickle, past the deadline
        bucket.get(location.key, target, within=settings.download_deadline)
    except LateDownload as exc:
        raise SourceError(f"source {exc} (QTHUMB_DOWNLOAD_DEADLINE)") from None
    except FileError as exc:
        raise store_failure(SourceError, "source ", exc, hint) from None
    return target.stat().st_size


def destination_storage(
    spec: FormatSpec, destination: Destination, settings: Settings, api_key: str | None
) -> Storage:
    """The storage for a destination the query names (only s3:// ones are supported): the
    URL's key is a prefix for a kind that makes several files, else the object's full key.
    Signed with the credentials the destination carries, or an entry of
    ``QTHUMB_S3_CREDENTIALS`` that ``api_key`` may use; with none, it fails at once."""
    if not destination.url.lower().startswith("s3://"):
        if "://" not in destination.url:
            raise FormatFailure(f"destination {destination.url[:200]!r} is not a URL")
        scheme = destination.url.split(":", 1)[0]
        raise FormatFailure(
            f"destination {destination.url}: {scheme}:// destinations are not supported; "
            "use s3:// (any S3-compatible store) or no destination"
        )
    shown = destination.url.encode("unicode_escape").decode("ascii")
    try:
        location, user, password = parse_s3_url(destination.url, settings)
        creds = credentials(
            location, destination.key or user, destination.secret or password, settings, api_key
        )
    except ValueError as exc:
        raise FormatFailure(f"destination {shown}: {exc}") from None
    if creds.anonymous:
        raise FormatFailure(f"destination {shown}: {no_credentials_hint(location)}")
    try:
        check_endpoint(location, settings.egress)
    except BlockedAddress as exc:
        raise FormatFailure(f"destination {destination.url}: {exc}") from None
    extra = {
        name: value
        for name, value in (
            ("ACL", destination.permissions),
            ("StorageClass", destination.storage_class),
            ("CacheControl", destination.cache_control),
        )
        if value
    }
    bucket = S3Objects(location, creds, settings, settings.egress, extra=extra)
    if spec.folder:
        return Storage(bucket, prefix=location.key, label="destination ")
    return Storage(bucket, single=location.key or None, label="destination ")
