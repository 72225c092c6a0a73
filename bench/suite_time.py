"""The test suite's own time: ``make test`` from a fresh clone of the committed code (its venv
made and qthumb installed from nothing; system packages installed when missing), under
``/usr/bin/time -v``. Reports wall time, the CPU it used and the least wall time that CPU allows
on this machine's cores, so a target for the suite's time can be judged against it; once on
one process and once the default way (in parallel), side by side.

    python bench/suite_time.py    # writes its section of bench/RESULTS.md
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import write_section  # noqa: E402
from bench.suite_cpu import ENV, cpu_table  # noqa: E402

START, END = "<!-- suite:start -->", "<!-- suite:end -->"


def time_v(text: str, label: str) -> str:
    """One value of ``/usr/bin/time -v``'s report."""
    match = re.search(rf"^\s*{re.escape(label)}: (.+)$", text, re.M)
    assert match, f"{label!r} not in /usr/bin/time's report"
    return match.group(1).strip()


def wall_seconds(clock: str) -> float:
    """``h:mm:ss`` or ``m:ss.ss`` as seconds."""
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def mmss(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


@dataclass
class Run:
    label: str
    exit_status: int
    summary: str
    wall: float
    cpu: float
    cpu_use: str
    text: str
    where: list[str]  # where the CPU went (bench.suite_cpu), by test module


def make_test(label: str, *make_args: str) -> Run:
    """``make test`` (with ``make_args``) in a fresh clone of HEAD, timed whole, with the
    clone's ``bench.suite_cpu`` counting where the CPU went."""
    with tempfile.TemporaryDirectory(prefix="qthumb-suite-") as tmp:
        clone = Path(tmp) / "qthumb"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        log, cpu = Path(tmp) / "make-test.log", Path(tmp) / "cpu"
        cpu.mkdir()
        env = {**os.environ, ENV: str(cpu), "PYTHONPATH": str(clone),
               "PYTEST_ADDOPTS": "-p bench.suite_cpu"}  # fmt: skip
        with log.open("w") as out:
            done = subprocess.run(
                ["/usr/bin/time", "-v", "make", "test", *make_args],
                cwd=clone,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        text = log.read_text(errors="replace")
        whole = float(time_v(text, "User time (seconds)")) + float(
            time_v(text, "System time (seconds)")
        )
        where = cpu_table(cpu, whole)
    summary = re.findall(r"^=+ (.*\d+ passed.*) in [\d.]+s.*=+$", text, re.M)
    return Run(
        label,
        done.returncode,
        summary[-1] if summary else "no summary line",
        wall_seconds(time_v(text, "Elapsed (wall clock) time (h:mm:ss or m:ss)")),
        whole,
        time_v(text, "Percent of CPU this job got"),
        text,
        where,
    )


def main() -> None:
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    cores = os.cpu_count() or 1
    runs = [
        make_test("one process (`make test TEST_PROCESSES=1`)", "TEST_PROCESSES=1"),
        make_test(f"default: {cores + 1} processes (pytest-xdist, `--dist loadfile`)"),
    ]
    before, after = runs
    rows = [
        f"| {r.label} | {r.exit_status} | {r.summary} | {mmss(r.wall)} | {r.cpu:.0f} s "
        f"| {r.cpu_use} | {mmss(r.cpu / cores)} |"
        for r in runs
    ]
    section = "\n".join(
        [
            START,
            "## The test suite: `make test` from a fresh clone",
            "",
            f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} by `bench/suite_time.py` on "
            f"commit {commit}, {cores} cores, one run after the other: each a fresh `git clone`, "
            "then `make test` under `/usr/bin/time -v` (the venv made and qthumb installed from "
            "nothing; system packages were already installed here, so apt did nothing).",
            "",
            "| how the tests run | exit | pytest | wall time | CPU time (user + system, every "
            f"process) | CPU use | least wall time that CPU allows on {cores} cores |",
            "|---|---:|---|---:|---:|---:|---:|",
            *rows,
            "",
            f"In parallel the suite took {before.wall / after.wall:.2f}x less time than on one "
            f"process. It needs {after.cpu:.0f} CPU seconds: on {cores} cores no way of running "
            f"it ends in less than {mmss(after.cpu / cores)}, even with every core busy all the "
            "time; a shorter suite needs less work, not more parallelism.",
            "",
            "Where that CPU went, in the parallel run (`bench/suite_cpu.py`, a pytest plugin: "
            "each module's CPU is its process's and that of the children it reaped while the "
            "module ran, its servers, workers and encoders; processes podman's conmon runs "
            "for a container are nobody's child here and are not counted):",
            "",
            "| where | CPU time | share |",
            "|---|---:|---:|",
            *after.where,
            END,
        ]
    )
    write_section(section, START, END)
    print(section)
    failed = [r for r in runs if r.exit_status]
    for r in failed:
        print(r.text[-5000:])
    if failed:
        raise SystemExit(failed[0].exit_status)


if __name__ == "__main__":
    main()
