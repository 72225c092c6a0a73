"""Frames, storyboards and animations on demand, the API's side: what was made kept in memory
(``ResultCache``), and the frame server that makes the rest (``app.on_demand.asks`` says what
a URL asks for).

The frame server (``workers.on_demand.frame_server``) is a child process of this API process,
reached over a local socket. A frame on demand must come back in about one seek and decode, which a
queue round trip to a worker would more than double; made in the API process it would put PyAV
and Pillow there, and a decoder that crashes on a hostile source would take the API down with
it. So: the child is started on the first frame asked for, answers each request on its own
connection (one decode a core at once), is stopped by this process's supervisor (and by the
parent-death signal if this process is killed outright), and is started again when it has
died. The request that was running when it died gets a 422.
A repeated request never leaves this process: it comes from ``ResultCache``.
"""

from __future__ import annotations

import logging
import os
import pickle
import secrets
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from qthumb.app.children.orphans import qthumb_module
from qthumb.app.children.supervisor import ChildSpec, ChildUnavailable, Supervisor
from qthumb.app.on_demand.asks import (
    Answer,
    Ask,
    Failed,
    FrameRequestError,
    OnDemandBusy,
    RenderAsk,
    RenderedFrame,
    Request,
    ServerStopping,
    SourceAsk,
    SourceFile,
    Storyboard,
    upload_owners,
)
from qthumb.app.settings import Settings

log = logging.getLogger("qthumb.on_demand")
T = TypeVar("T")

STARTUP_SECONDS = 60.0  # the child's imports, on a loaded machine
REQUEST_SECONDS = 300.0  # one answer (a source fetched first, when not cached): then it is stuck
MAX_LAYOUTS = 4096  # storyboard layouts remembered (a few dozen bytes each)
# A storyboard by URL is kept whole or refused: at most this share of the result cache
STORYBOARD_SHARE = 4


class ResultCache:
    """Encoded frames, most recently used last, dropped from the front past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit, self.size = limit, 0
        self.items: OrderedDict[str, RenderedFrame] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> RenderedFrame | None:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
            return found

    def put(self, key: str, value: RenderedFrame) -> None:
        if len(value.data) > self.limit:
            return
        with self.lock:
            old = self.items.pop(key, None)
            self.size -= len(old.data) if old else 0
            self.items[key] = value
            self.size += len(value.data)
            while self.size > self.limit:
                _, dropped = self.items.popitem(last=False)
                self.size -= len(dropped.data)


class Frames(Protocol):
    """Whatever answers frame requests: the frame server (``FrameServer``, a child process),
    or the same code in this process (``workers.on_demand.frame_server.LocalFrames``)."""

    def answer(self, ask: Ask) -> Answer: ...

    def stop_taking(self) -> None:
        """The API is stopping: what stops is not started again."""

    def close(self) -> None: ...


class FrameServer:
    """The child process that makes frames, owned by the process's supervisor
    (``app.children.supervisor``): started when first needed and again after it died.
    ``answer`` sends one request on a connection of its own and returns the reply."""

    def __init__(self, settings: Settings, supervisor: Supervisor | None = None) -> None:
        self.settings = settings
        self._own_supervisor = supervisor is None
        self.supervisor = supervisor or Supervisor("frame-server-supervisor")
        self._lock = threading.Lock()
        self.address = ""
        self._key = b""
        self.child = self.supervisor.add(
            ChildSpec(
                "frame server",
                argv=lambda: qthumb_module("workers.on_demand.frame_server"),
                stdin=self._payload,
                ready_timeout=STARTUP_SECONDS,
                on_demand=True,
                stop_timeout=2.0,
            )
        )

    def _payload(self) -> bytes:
        """A new address and key at each start. The settings (S3 secrets among them) and the
        key go through the pipe, never argv."""
        self.address = f"\0qthumb-frames-{os.getpid()}-{secrets.token_hex(8)}"
        self._key = secrets.token_bytes(32)
        payload = pickle.dumps((self.address, self._key, self.settings, os.getpid()))
        return len(payload).to_bytes(8, "big") + payload

    @property
    def pid(self) -> int | None:
        """The running child's process id; ``None`` before the first request or after it
        died."""
        return self.child.pid

    def start(self) -> int:
        """Start the child unless it runs; its process id."""
        return self._ensure()[2].pid

    def answer(self, ask: Ask) -> Answer:
        address, key, process = self._ensure()
        try:
            with Client(address, family="AF_UNIX", authkey=key) as conn:
                conn.send(ask)
                if not conn.poll(REQUEST_SECONDS):
                    why = f"a request took over {REQUEST_SECONDS:.0f} s"
                    self.supervisor.kill(self.child, process, why)
                    return Failed(504, f"the frame took over {REQUEST_SECONDS:.0f} s")
                reply: Answer = conn.recv()
                return reply
        except (EOFError, OSError) as exc:  # it died under this request (or just before)
            try:  # the socket closes a moment before the process is reaped
                code: int | None = process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                code = None
            log.error(
                "the frame server stopped (exit %s, %s) under a request", code, type(exc).__name__
            )
            why = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
            return Failed(422, f"the frame could not be made: the decoder stopped ({why})")

    def _ensure(self) -> tuple[str, bytes, subprocess.Popen[bytes]]:
        with self._lock:  # the address and key are those of the process returned
            try:
                process = self.supervisor.ensure(self.child)
            except ChildUnavailable as exc:
                if self.supervisor.stopping:
                    raise ServerStopping() from None
                raise FrameRequestError(str(exc), status=503) from None
            return self.address, self._key, process

    def stop_taking(self) -> None:
        self.supervisor.no_more_starts()

    def close(self) -> None:
        if self._own_supervisor:
            self.supervisor.stop()


class OnDemand:
    """What the routes use: frames from memory when made before, else from the frame server;
    and a task's source as a local file (the console's player streams it).

    Requests that reach the frame server run in threads of their own (``QTHUMB_ON_DEMAND_
    CONCURRENCY`` at once, never the threads the Qencode API's endpoints use), with at most
    ``QTHUMB_ON_DEMAND_QUEUE`` more waiting; past that a request is answered 503 with
    ``Retry-After`` at once, so frames asked of a slow source can only slow each other."""

    def __init__(self, settings: Settings, frames: Frames | None = None) -> None:
        self.settings = settings
        self.results = ResultCache(settings.on_demand_result_cache_bytes)
        self.frames: Frames = frames or FrameServer(settings)
        self.limiter = anyio.CapacityLimiter(settings.on_demand_concurrency)
        self.places = settings.on_demand_concurrency + settings.on_demand_queue
        self.taken = 0  # running and waiting; changed on the event loop only
        self.stopping = False
        self._flights: dict[str, tuple[threading.Lock, int]] = {}
        self._flights_guard = threading.Lock()
        # storyboards built: (sheets, bytes in all), kept apart from their pieces
        self.layouts: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def stop_taking(self) -> None:
        """The API is stopping: new requests get 503, and a frame server that dies is not
        started again (those running finish, within the shutdown timeout)."""
        self.stopping = True
        self.frames.stop_taking()

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` in one of the on-demand threads, or ``OnDemandBusy``."""
        if self.stopping:
            raise ServerStopping()
        if self.taken >= self.places:
            raise OnDemandBusy(self.taken)
        self.taken += 1
        try:
            return await anyio.to_thread.run_sync(partial(call, *args), limiter=self.limiter)
        finally:
            self.taken -= 1

    def cached(self, token: str, request: Request, piece: str = "") -> RenderedFrame | None:
        """What was made before for ``request`` (``piece``: a storyboard's ``vtt``, ``json``
        or ``sheet<N>``), or None."""
        return self.results.get(f"{request.key(token)}|{piece}")

    def render(
        self,
        token: str,
        source: str,
        request: Request,
        upload_owner: Any,
        api_key: str,
        piece: str = "",
    ) -> RenderedFrame:
        """Raises ``FrameRequestError`` with the status to answer when nothing comes. A
        storyboard is made whole, once, however many of its pieces are asked for at once
        (a player asks for the VTT and its first sheet together)."""
        key = request.key(token)
        self._check_layout(key, piece)  # a sheet past the last, or too large: nothing built
        with self._flight(key):
            found = self.results.get(f"{key}|{piece}")
            if found is not None:
                return found
            self._check_layout(key, piece)  # another request built it meanwhile
            reply = self.frames.answer(
                RenderAsk(token, source, request, upload_owners(source, upload_owner), api_key)
            )
            if isinstance(reply, Storyboard):
                return self._keep_storyboard(key, reply, piece)
            if not isinstance(reply, RenderedFrame):
                raise _refused(reply)
            self.results.put(f"{key}|{piece}", reply)
            return reply

    def _check_layout(self, key: str, piece: str) -> None:
        """Refuse, without building anything, what a storyboard built before says cannot be
        answered: a sheet past its last, or any piece of one too large to keep."""
        with self._flights_guard:
            layout = self.layouts.get(key)
            if layout is not None:
                self.layouts.move_to_end(key)
        if layout is None:
            return
        sheets, size = layout
        if size > self.results.limit // STORYBOARD_SHARE:
            raise _too_large(size, self.results.limit)
        if piece.startswith("sheet") and int(piece[5:]) >= sheets:
            raise FrameRequestError(f"the storyboard has {sheets} sheets, from sheet=0", 404)

    def _keep_storyboard(self, key: str, reply: Storyboard, piece: str) -> RenderedFrame:
        pieces = {"vtt": reply.vtt, "json": reply.json}
        if reply.bif is not None:
            pieces["bif"] = reply.bif
        pieces.update({f"sheet{n}": sheet for n, sheet in enumerate(reply.sheets)})
        size = sum(len(made.data) for made in pieces.values())
        with self._flights_guard:
            self.layouts[key] = (len(reply.sheets), size)
            while len(self.layouts) > MAX_LAYOUTS:
                self.layouts.popitem(last=False)
        if size > self.results.limit // STORYBOARD_SHARE:
            # kept, its sheets would push each other out: every sheet asked for would build
            # the whole storyboard again
            raise _too_large(size, self.results.limit)
        for name, made in pieces.items():
            self.results.put(f"{key}|{name}", made)
        if piece not in pieces:
            raise FrameRequestError(
                f"the storyboard has {len(reply.sheets)} sheets, from sheet=0", 404
            )
        return pieces[piece]

    @contextmanager
    def _flight(self, key: str) -> Iterator[None]:
        """One request at a time makes what ``key`` names; the others wait and find it."""
        with self._flights_guard:
            lock, users = self._flights.get(key, (threading.Lock(), 0))
            self._flights[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._flights_guard:
                lock, users = self._flights[key]
                if users == 1:
                    del self._flights[key]
                else:
                    self._flights[key] = (lock, users - 1)

    def source_path(self, token: str, source: str, upload_owner: Any, api_key: str) -> Path:
        uploads = upload_owners(source, upload_owner)
        reply = self.frames.answer(SourceAsk(token, source, uploads, api_key))
        if not isinstance(reply, SourceFile):
            raise _refused(reply)
        return Path(reply.path)

    def close(self) -> None:
        self.frames.close()


def _too_large(size: int, limit: int) -> FrameRequestError:
    return FrameRequestError(
        f"this storyboard is {size / 2**20:.1f} MiB, more than a {STORYBOARD_SHARE}th of what "
        f"QTHUMB_ON_DEMAND_RESULT_CACHE_BYTES keeps ({limit / 2**20:.0f} MiB): ask for smaller "
        "tiles or a longer interval, or make it as a task",
        413,
    )


def _refused(reply: Answer) -> FrameRequestError:
    if isinstance(reply, Failed):
        return FrameRequestError(reply.message, status=reply.status)
    return FrameRequestError(f"the frame server answered {type(reply).__name__}", status=500)
