"""The ASGI application ``qthumb serve`` and ``qthumb api`` serve: ``create_app(settings)``
wires settings, store, queue, the Qencode routes and their middlewares (``app.api``), the
console, the on-demand frames and the control plane, and the loops that deliver callbacks
and sweep stale tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from qthumb.app import __version__
from qthumb.app.api import control_routes, ops_routes, routes, storage_routes
from qthumb.app.api.api_docs import add_api_docs
from qthumb.app.api.journal import Journal, Journaled
from qthumb.app.api.keys import resolve_api_keys
from qthumb.app.api.middleware import BodyLimit, CollapseSlashes, RequestMetrics
from qthumb.app.api.service import QencodeService
from qthumb.app.api.uploads import UploadLocation, upload_router
from qthumb.app.children.supervisor import Supervisor
from qthumb.app.console import playground as console_playground
from qthumb.app.console import routes as console_routes
from qthumb.app.console.auth import BadCsrf, SignInRequired
from qthumb.app.errors import QencodeError
from qthumb.app.on_demand import routes as on_demand_routes
from qthumb.app.on_demand.service import FrameServer, OnDemand
from qthumb.app.settings import Settings
from qthumb.app.tasks.backends import Backends, build
from qthumb.app.tasks.callbacks import deliver_due
from qthumb.app.tasks.faults import FaultStore
from qthumb.app.tasks.outbox import CallbackOutbox
from qthumb.app.tasks.recovery import sweep_safely
from qthumb.app.tasks.store import TaskStore

log = logging.getLogger("qthumb.api")


async def _deliver_forever(settings: Settings, store: TaskStore, outbox: CallbackOutbox) -> None:
    while True:
        try:
            sent = await asyncio.to_thread(deliver_due, settings, store, outbox)
        except Exception:  # a receiver or a locked database must not stop deliveries for good
            log.exception("callback delivery failed; trying again")
            sent = 0
        if not sent:
            await asyncio.sleep(0.2)


async def _sweep_forever(settings: Settings, backends: Backends) -> None:
    b = backends
    while True:
        now = time.time()
        await asyncio.to_thread(sweep_safely, settings, b.store, b.queue, b.outbox, b.files, now)
        await asyncio.sleep(settings.sweep_interval)


def create_app(
    settings: Settings, backends: Backends | None = None, supervisor: Supervisor | None = None
) -> FastAPI:
    """The API. ``supervisor``: the process's, which then owns the frame server (by default
    the app has one of its own, stopped with it)."""
    backends = backends or build(settings)
    store, outbox, queue = backends.store, backends.outbox, backends.queue
    keys, dev_key = resolve_api_keys(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if dev_key:
            log.warning("no QTHUMB_API_KEYS set; dev API key: %s", dev_key)
        loops = [
            asyncio.create_task(_sweep_forever(settings, backends)),
            asyncio.create_task(_deliver_forever(settings, store, outbox)),
        ]
        try:
            yield
        finally:
            for loop in loops:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
            app.state.on_demand.close()  # its frame server, if one was started
            close_reads = getattr(backends.db, "close_reads", None)
            if close_reads is not None:  # PostgreSQL's async pool, made in this loop
                await close_reads()

    # /docs and /redoc: added last, served from here (app.api.api_docs)
    app = FastAPI(
        title="qthumb", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    app.state.store = store
    app.state.files = backends.files
    app.state.backends = backends
    app.state.outbox = outbox
    app.state.on_demand = OnDemand(settings, FrameServer(settings, supervisor))

    faults = FaultStore(backends.db) if settings.control else None
    app.state.faults = faults
    app.state.service = QencodeService(settings, store, queue, keys, outbox, faults=faults)
    app.add_exception_handler(QencodeError, routes.qencode_error_handler)
    app.include_router(routes.router)  # first: routes match in order, and status is polled
    app.add_exception_handler(control_routes.FaultAnswer, control_routes.answer)
    app.include_router(control_routes.router)
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, control_routes.DropNote) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(control_routes.DropNote())
    app.add_exception_handler(StarletteHTTPException, routes.unknown_path_handler)
    app.include_router(storage_routes.router)
    app.include_router(on_demand_routes.router)
    app.include_router(console_routes.router)
    app.include_router(console_playground.router)
    app.mount("/ui/static", console_routes.static_app(), name="console-static")
    app.add_exception_handler(SignInRequired, console_routes.console_error)
    app.add_exception_handler(BadCsrf, console_routes.console_error)
    app.include_router(ops_routes.router)
    app.include_router(upload_router(settings, store, backends.files))
    add_api_docs(app)
    app.add_middleware(
        UploadLocation, base_url=lambda: settings.base_url, max_bytes=settings.max_source_bytes
    )
    journal = app.state.journal = Journal(settings.journal_size)
    if settings.control:  # every Qencode call recorded for the tests that steer this mock

        def owner(method: str, form: dict[str, str]) -> str | None:
            return control_routes.owner_of(app.state.service, method, form)

        app.add_middleware(Journaled, journal=journal, owner=owner)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(CollapseSlashes)
    app.add_middleware(RequestMetrics)
    return app
