"""Where a task's attempt works on this machine (``<work dir>/<token>-<attempt>``), who this
worker is (``host:pid``), and the removal of folders no live attempt owns."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from qthumb.app.children.orphans import pid_alive
from qthumb.app.settings import Settings
from qthumb.app.tasks.store import TaskStore


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def work_folder(settings: Settings, token: str, attempt: int) -> Path:
    """Where one attempt works, on this machine: ``<work dir>/<token>-<attempt>``."""
    return settings.work_dir / f"{token}-{attempt}"


def clear_stale_work(settings: Settings, store: TaskStore) -> None:
    """Remove work folders left by attempts that no live process on this machine runs (a
    SIGKILLed pool, a machine that rebooted). Folders of live attempts are kept, so several
    pools may share one data dir."""
    if not settings.work_dir.is_dir():
        return
    host = socket.gethostname()
    for folder in settings.work_dir.iterdir():
        token, _, attempt = folder.name.rpartition("-")
        task = store.get(token) if attempt.isdigit() else None
        owner = (task.worker_id or "") if task is not None else ""
        owner_host, _, owner_pid = owner.rpartition(":")
        alive = (
            task is not None
            and task.status.running
            and task.attempts == int(attempt)
            and owner_host == host
            and owner_pid.isdigit()
            and pid_alive(int(owner_pid))
        )
        if not alive:
            shutil.rmtree(folder, ignore_errors=True)
