"""The frame server: ``python -I -m qthumb.workers.on_demand.frame_server``, a child of an API
process (``app.on_demand.service.FrameServer`` starts it and says why it is a process of its
own).

Reads its address, key and settings from stdin (a length and a pickle), listens on that
abstract Unix socket, says ``ready`` on stdout, and answers each connection in a thread of its
own: a ``RenderAsk`` → a ``RenderedFrame`` (a ``Storyboard`` for a storyboard), a
``SourceAsk`` → a ``SourceFile``, or a ``Failed`` (``app.on_demand.asks``' typed messages).
``LocalFrames`` answers the same in the calling process (tests, and callers that need no
isolation). Only a client holding the key gets in (``multiprocessing.connection``'s HMAC
challenge), so the pickles come from the API alone. Its API process's supervisor stops it
(and kills it past a request's deadline); the parent-death signal ends it if that process is
killed outright.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import sys
import threading
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener

from qthumb.app.children.orphans import die_with_parent
from qthumb.app.memory import limit_memory, memory_failure
from qthumb.app.on_demand.asks import (
    Answer,
    Ask,
    Failed,
    FrameRequestError,
    RenderAsk,
    SourceAsk,
    SourceFile,
)
from qthumb.app.redact import setup_logging
from qthumb.app.settings import Settings
from qthumb.app.tasks.backends import build_files
from qthumb.workers.failures import FormatFailure, TaskFailure
from qthumb.workers.on_demand.frames import OnDemandFrames

log = logging.getLogger("qthumb.frame_server")


def answer(frames: OnDemandFrames, ask: object) -> Answer:
    try:
        if isinstance(ask, RenderAsk):
            return frames.render(ask.token, ask.source, ask.request, ask.uploads.get, ask.api_key)
        if isinstance(ask, SourceAsk):
            path = frames.sources.path(ask.token, ask.source, ask.uploads.get, ask.api_key)
            return SourceFile(str(path))
        return Failed(400, f"unknown request {type(ask).__name__}")
    except FrameRequestError as exc:
        return Failed(exc.http_status, exc.message)
    except (TaskFailure, FormatFailure) as exc:
        return Failed(422, exc.description)
    except MemoryError:
        return Failed(422, f"the frame could not be made: {memory_failure(frames.settings)}")
    except Exception as exc:  # whatever a source does to a decoder: the request's error, not ours
        log.exception("on-demand frame for task %s failed", getattr(ask, "token", "?"))
        return Failed(422, f"the frame could not be made ({type(exc).__name__})")


class LocalFrames:
    """The frame server's answers, made in this process (``app.on_demand.service.Frames``)."""

    def __init__(self, settings: Settings) -> None:
        self.frames = OnDemandFrames(settings, build_files(settings))

    def answer(self, ask: Ask) -> Answer:
        return answer(self.frames, ask)

    def stop_taking(self) -> None:
        return None  # nothing of its own to start again

    def close(self) -> None:
        return None


def _serve(frames: OnDemandFrames, conn: Connection, places: threading.Semaphore) -> None:
    try:
        with conn, contextlib.suppress(EOFError, OSError):  # the API gave up on this request
            conn.send(answer(frames, conn.recv()))
    finally:
        places.release()


def main() -> None:
    size = int.from_bytes(sys.stdin.buffer.read(8), "big")
    address, key, settings, parent = pickle.loads(sys.stdin.buffer.read(size))
    assert isinstance(settings, Settings)
    die_with_parent(signal.SIGKILL, expected_parent=parent)  # the supervisor's backstop
    limit_memory(settings)  # QTHUMB_WORKER_MEMORY_LIMIT: a hostile source fails its request
    setup_logging(settings.log_format)
    frames = OnDemandFrames(settings, build_files(settings))
    listener = Listener(address, family="AF_UNIX", authkey=key)
    # As many requests at once as the API sends (its own bound), never more.
    places = threading.Semaphore(settings.on_demand_concurrency)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nobody reads the pipe from now on
    while True:
        places.acquire()
        try:
            conn = listener.accept()
        except (AuthenticationError, OSError, EOFError) as exc:  # a wrong key, or gone
            places.release()
            log.warning("frame server refused a connection: %s", type(exc).__name__)
            continue
        threading.Thread(target=_serve, args=(frames, conn, places), daemon=True).start()


if __name__ == "__main__":
    main()
