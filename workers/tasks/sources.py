"""Bring a task's source to a local file: ``http(s)://`` streamed with a size cap and timeouts,
or a local path inside ``QTHUMB_LOCAL_SOURCE_DIRS`` (``file:///abs/path`` or ``/abs/path``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from qthumb.app.egress import BlockedAddress, guarded_stream
from qthumb.app.qencode.query import upload_id, url_scheme
from qthumb.app.settings import Settings
from qthumb.app.storage.files import FileError, Files
from qthumb.app.tokens import is_token
from qthumb.workers.failures import SourceError, store_failure
from qthumb.workers.tasks.s3 import download_s3

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FetchedSource:
    path: Path
    size: int


def fetch_source(
    source: str,
    work_dir: Path,
    settings: Settings,
    files: Files,
    progress: Callable[[int], None],
    upload_owner: Callable[[str], str | None],
    task_token: str,
    api_key: str | None,
) -> FetchedSource:
    """Return a local file holding the source. Local files are read in place, never copied.
    ``api_key``: whom it is fetched for (``OPERATOR``: qthumb's own commands), which decides
    the credentials an ``s3://`` source may be read with."""
    scheme = url_scheme(source)
    if scheme in ("http", "https"):
        return _download(source, work_dir / "source", settings, progress)
    if scheme == "file" or source.startswith("/"):
        return _local(source, settings)
    if scheme == "s3":
        target = work_dir / "source"
        return FetchedSource(path=target, size=download_s3(source, target, settings, api_key))
    if scheme == "tus":
        return _uploaded(source, work_dir, files, upload_owner, task_token)
    raise SourceError(
        f"source {source[:200]!r}: unsupported scheme; use http(s)://, s3://, file:// or an "
        "absolute path"
    )


def _uploaded(
    source: str,
    work_dir: Path,
    files: Files,
    upload_owner: Callable[[str], str | None],
    task_token: str,
) -> FetchedSource:
    """``tus:<uuid>``: a file uploaded to this task's upload URL, and finished."""
    uid = upload_id(source) or ""
    if not is_token(uid) or upload_owner(uid) != task_token:
        raise SourceError(f"source {source}: no upload with that uuid was made for this task")
    try:
        state = files.upload_state(uid)
    except FileError as exc:
        raise store_failure(SourceError, f"source {source}: ", exc) from None
    if state is None:
        raise SourceError(f"source {source}: the upload is missing or unreadable")
    if state.size is None or state.offset != state.size:
        raise SourceError(
            f"source {source}: the upload is not complete ({state.offset} of {state.size} bytes)"
        )
    try:
        path = files.fetch_upload(uid, work_dir)
    except FileError as exc:
        raise SourceError(f"source {source}: {exc}") from None
    return FetchedSource(path=path, size=state.size)


def _local(source: str, settings: Settings) -> FetchedSource:
    try:
        raw = unquote(urlsplit(source).path) if source.lower().startswith("file:") else source
    except ValueError:
        raise SourceError(f"source {source[:200]!r} is not a valid file URL") from None
    if "\x00" in raw:
        raise SourceError("source: the path holds a NUL byte")
    path = Path(raw).resolve()
    roots = [Path(d).resolve() for d in settings.local_source_dirs]
    if not any(path.is_relative_to(root) for root in roots):
        # The allowed folders are the operator's business: not named to the client.
        raise SourceError(f"source {raw}: local files must be inside QTHUMB_LOCAL_SOURCE_DIRS")
    if not path.is_file():
        raise SourceError(f"source {raw}: no such file")
    return FetchedSource(path=path, size=path.stat().st_size)


def _download(
    url: str, target: Path, settings: Settings, progress: Callable[[int], None]
) -> FetchedSource:
    import httpx  # here, not above: a command over local files never needs it (60 ms)

    timeout = httpx.Timeout(
        connect=settings.source_connect_timeout,
        read=settings.source_read_timeout,
        write=settings.source_read_timeout,
        pool=settings.source_connect_timeout,
    )
    cap = settings.max_source_bytes
    policy = settings.egress
    deadline = settings.download_deadline
    late = f"source {url}: not downloaded within {deadline:g} s (QTHUMB_DOWNLOAD_DEADLINE)"
    started = time.monotonic()
    client = httpx.Client(timeout=timeout)
    # A source that trickles (a byte now and then, never idle past the read timeout) would hold
    # the worker for ever: the body is checked against the deadline as it comes, and a timer
    # closes the client for a trickle before the body (the headers), waking the read within
    # one read timeout.
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        client.close()

    timer = threading.Timer(deadline, expire)
    timer.daemon = True
    timer.start()
    written = 0
    try:
        with (
            client,
            guarded_stream(
                client,
                "GET",
                url,
                policy,
                max_redirects=settings.max_redirects,
                headers={"User-Agent": "qthumb"},
            ) as response,
        ):
            if response.status_code != 200:
                raise SourceError(f"source: HTTP {response.status_code} from {url}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > cap:
                raise SourceError(
                    f"source {url}: {int(declared)} bytes is over the limit of {cap} bytes"
                )
            with target.open("wb") as out:
                for chunk in response.iter_bytes():  # as each read returns: checked as it comes
                    written += len(chunk)
                    if written > cap:
                        raise SourceError(f"source {url}: larger than the limit of {cap} bytes")
                    if expired.is_set() or time.monotonic() - started > deadline:
                        raise SourceError(late)
                    out.write(chunk)
                    progress(written)
    except BlockedAddress as exc:
        raise SourceError(f"source {url}: {exc}") from None
    except httpx.TimeoutException:
        raise SourceError(late if expired.is_set() else f"source {url}: timed out") from None
    except (httpx.HTTPError, httpx.InvalidURL, RuntimeError) as exc:
        if expired.is_set():
            raise SourceError(late) from None
        raise SourceError(f"source {url}: {type(exc).__name__}: {exc}") from None
    finally:
        timer.cancel()
    if written == 0:
        raise SourceError(f"source {url}: the response was empty")
    return FetchedSource(path=target, size=written)
