"""Where the test suite's CPU goes: a pytest plugin that ``bench/suite_time.py`` loads into
``make test`` (``-p bench.suite_cpu``). Each process of the run writes, to the folder named by
``QTHUMB_SUITE_CPU_DIR``, one JSON line per test module (the CPU seconds of the process and of
the children it reaped while the module ran: the servers, workers and encoders its tests
started) and, at the end, its own totals. ``cpu_table`` reads them back: the modules, and what
the controlling process's children used besides its workers (the container image builds)."""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ENV = "QTHUMB_SUITE_CPU_DIR"
_started: dict[str, tuple[float, float]] = {}


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, reaped.ru_utime + reaped.ru_stime


def _counted(config: pytest.Config) -> bool:
    """The suite's own processes: an xdist worker, or the controller of a run with ``-n``
    (``make test`` always gives it). A pytest a test starts (a sample project's) inherits the
    plugin and the folder but runs without ``-n``: it is counted in the module that ran it."""
    return hasattr(config, "workerinput") or bool(config.getoption("numprocesses", None))


def _write(config: pytest.Config, record: dict[str, Any]) -> None:
    folder = os.environ.get(ENV)
    if folder and _counted(config):
        with (Path(folder) / f"{os.getpid()}.jsonl").open("a") as out:
            out.write(json.dumps(record) + "\n")


def pytest_runtest_setup(item: pytest.Item) -> None:
    _started.setdefault(item.nodeid.split("::")[0], _cpu())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield
    module = item.nodeid.split("::")[0]
    if nextitem is None or nextitem.nodeid.split("::")[0] != module:
        (own0, reaped0), (own1, reaped1) = _started[module], _cpu()
        _write(item.config, {"module": module, "cpu": own1 - own0 + reaped1 - reaped0})


def pytest_sessionfinish(session: pytest.Session) -> None:
    own, reaped = _cpu()
    worker = hasattr(session.config, "workerinput")  # a pytest-xdist worker, not the controller
    _write(
        session.config,
        {"process": "worker" if worker else "controller", "own": own, "reaped": reaped},
    )


def cpu_table(folder: Path, whole: float, top: int = 12) -> list[str]:
    """Markdown rows: the run's CPU seconds by where they went (``whole``: every process's, as
    ``/usr/bin/time`` counted them)."""
    modules: list[tuple[float, str]] = []
    workers, controller = 0.0, (0.0, 0.0)
    for path in folder.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "module" in record:
                modules.append((record["cpu"], record["module"]))
            elif record["process"] == "worker":
                workers += record["own"] + record["reaped"]
            else:
                controller = (record["own"], record["reaped"])
    modules.sort(reverse=True)
    pytest_cpu = controller[0] + controller[1]
    rows = [
        ("make's steps before pytest: the venv, installs, ruff, mypy, import-linter",
         whole - pytest_cpu),
        ("the controlling pytest process's other children: the container image builds",
         controller[1] - workers),
        *((f"`{name}`", cpu) for cpu, name in modules[:top]),
        (f"the other {len(modules) - top} test modules", sum(c for c, _ in modules[top:])),
        ("pytest's processes themselves between modules (collection, session fixtures)",
         workers + controller[0] - sum(c for c, _ in modules)),
    ]  # fmt: skip
    return [f"| {what} | {cpu:.0f} s | {cpu / whole:.0%} |" for what, cpu in rows]
