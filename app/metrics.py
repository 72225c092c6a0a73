"""Prometheus metrics (prometheus-client), from every qthumb process of a machine.

API and worker processes record into one multiprocess folder (``<data dir>/metrics``), so the
API's ``/metrics`` shows the worker pool it runs beside (``qthumb serve``), and a worker pool
alone serves the same on ``QTHUMB_METRICS_PORT``. Task counts by state and the queue depth are
read from the database and the queue at scrape time, so every replica reports the same totals.

``start(settings)`` must run before the first metric is recorded (it chooses multiprocess
values); until then, and in library use, metrics live in the process's memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from qthumb.app.children.orphans import pid_alive
from qthumb.app.settings import Settings

_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own name for the folder
_folder: Path | None = None  # set by start()
_PID_FILE = re.compile(r"_(\d+)\.db$")
SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


@dataclass(frozen=True)
class Instruments:
    requests: Counter
    callbacks: Counter
    task_seconds: Histogram
    stage_seconds: Histogram
    stored_bytes: Counter
    workers: Gauge
    workers_busy: Gauge


def start(settings: Settings) -> Path:
    """Record into the machine's multiprocess folder; files of processes that are gone are
    merged away (their counters kept, their live gauges dropped)."""
    global _folder
    folder = settings.data_dir / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[_DIR_ENV] = str(folder)  # what prometheus-client's own code reads
    _folder = folder
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue()  # type: ignore[no-untyped-call]
    for file in folder.glob("*.db"):
        match = _PID_FILE.search(file.name)
        if match and not pid_alive(int(match.group(1))):
            mark_process_dead(int(match.group(1)), str(folder))  # type: ignore[no-untyped-call]
    return folder


@cache
def instruments() -> Instruments:
    return Instruments(
        requests=Counter(
            "qthumb_api_requests", "API requests by endpoint and HTTP code", ["endpoint", "code"]
        ),
        callbacks=Counter(
            "qthumb_callbacks", "Callback deliveries by outcome", ["event", "outcome"]
        ),
        task_seconds=Histogram(
            "qthumb_task_seconds",
            "Tasks from claim to end, by outcome",
            ["outcome"],
            buckets=SECONDS,
        ),
        stage_seconds=Histogram(
            "qthumb_stage_seconds", "Time in each stage of a task", ["stage"], buckets=SECONDS
        ),
        stored_bytes=Counter(
            "qthumb_stored_bytes", "Bytes of results stored, by kind of storage", ["storage"]
        ),
        workers=Gauge(
            "qthumb_worker_processes", "Worker processes alive", multiprocess_mode="livesum"
        ),
        workers_busy=Gauge(
            "qthumb_worker_processes_busy",
            "Worker processes running a task",
            multiprocess_mode="livesum",
        ),
    )


class StateCollector:
    """Tasks by state and queue depth, read when scraped (the same on every replica)."""

    def __init__(self, count_by_status: Callable[[], dict[str, int]], depth: Callable[[], int]):
        self.count_by_status, self.depth = count_by_status, depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        tasks = GaugeMetricFamily("qthumb_tasks", "Tasks by state", labels=["state"])
        for state, count in sorted(self.count_by_status().items()):
            tasks.add_metric([state], count)
        yield tasks
        yield GaugeMetricFamily(
            "qthumb_queue_depth", "Messages waiting in the queue", value=self.depth()
        )


def exposition(extra: StateCollector | None = None) -> bytes:
    """The text a scrape gets: this machine's processes, plus ``extra``."""
    registry = CollectorRegistry()
    if _folder is not None:
        MultiProcessCollector(registry, str(_folder))  # type: ignore[no-untyped-call]
    else:  # not started: this process's own metrics
        from prometheus_client import REGISTRY

        registry = REGISTRY
    if extra is not None:
        registry.register(extra)
    try:
        return generate_latest(registry)
    finally:
        if extra is not None:
            registry.unregister(extra)
