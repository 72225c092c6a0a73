"""S3-compatible destinations and sources: the URL a query names made into ``Objects`` in
that bucket (``app.storage.s3_objects``), after the endpoint's address is checked against the
egress policy. Permanent errors (a wrong secret, an unknown key, a missing bucket, a refused
ACL) fail at once with the store's own error code in the description.
"""

from __future__ import annotations

from pathlib import Path

from qthumb.app.egress import BlockedAddress
from qthumb.app.qencode.formats import FormatSpec
from qthumb.app.qencode.query import Destination
from qthumb.app.settings import Settings
from qthumb.app.storage.objects import FileError
from qthumb.app.storage.s3 import check_endpoint, credentials, parse_s3_url
from qthumb.app.storage.s3_objects import LateDownload, S3Objects
from qthumb.workers.tasks.failures import FormatFailure, SourceError
from qthumb.workers.tasks.storage import Storage


def download_s3(source: str, target: Path, settings: Settings) -> int:
    """Fetch an ``s3://`` source; credentials from the URL's user-info, else from
    ``QTHUMB_S3_CREDENTIALS`` for its endpoint."""
    try:
        location, user, password = parse_s3_url(source, settings)
    except ValueError as exc:
        raise SourceError(f"source: {exc}") from None
    try:
        check_endpoint(location, settings.egress)
    except BlockedAddress as exc:
        raise SourceError(f"source {location.describe()}: {exc}") from None
    bucket = S3Objects(location, *credentials(location, user, password, settings), settings)
    stored = bucket.stat(location.key)
    if stored is not None and stored.size > settings.max_source_bytes:
        raise SourceError(
            f"source {location.describe()}: {stored.size} bytes is over the limit of "
            f"{settings.max_source_bytes} bytes"
        )
    try:
        # a missing or refused key says so here, with its code; a trickle, past the deadline
        bucket.get(location.key, target, within=settings.download_deadline)
    except LateDownload as exc:
        raise SourceError(f"source {exc} (QTHUMB_DOWNLOAD_DEADLINE)") from None
    except FileError as exc:
        raise SourceError(f"source {exc}") from None
    return target.stat().st_size


def destination_storage(spec: FormatSpec, destination: Destination, settings: Settings) -> Storage:
    """The storage for a destination the query names (only s3:// ones are supported): the
    URL's key is a prefix for a kind that makes several files, else the object's full key."""
    if not destination.url.lower().startswith("s3://"):
        if "://" not in destination.url:
            raise FormatFailure(f"destination {destination.url[:200]!r} is not a URL")
        scheme = destination.url.split(":", 1)[0]
        raise FormatFailure(
            f"destination {destination.url}: {scheme}:// destinations are not supported; "
            "use s3:// (any S3-compatible store) or no destination"
        )
    try:
        location, user, password = parse_s3_url(destination.url, settings)
    except ValueError as exc:
        shown = destination.url.encode("unicode_escape").decode("ascii")
        raise FormatFailure(f"destination {shown}: {exc}") from None
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
    key, secret = destination.key or user, destination.secret or password
    bucket = S3Objects(location, key, secret, settings, extra=extra)
    if spec.folder:
        return Storage(bucket, prefix=location.key, label="destination ")
    return Storage(bucket, single=location.key or None, label="destination ")
