"""The test suite's own time: ``make test`` from a fresh clone of the committed code (its venv
made and qthumb installed from nothing; system packages installed when missing), under
``/usr/bin/time -v``. Reports wall time, the CPU it used and the least wall time that CPU allows
on this machine's cores, so a target for the suite's time can be judged against it.

    python bench/suite_time.py    # writes its section of bench/RESULTS.md
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import write_section  # noqa: E402

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


def main() -> None:
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="qthumb-suite-") as tmp:
        clone = Path(tmp) / "qthumb"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        log = Path(tmp) / "make-test.log"
        with log.open("w") as out:
            done = subprocess.run(
                ["/usr/bin/time", "-v", "make", "test"],
                cwd=clone,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        text = log.read_text(errors="replace")
    summary = re.findall(r"^=+ (.*\d+ passed.*) in [\d.]+s.*=+$", text, re.M)
    wall = wall_seconds(time_v(text, "Elapsed (wall clock) time (h:mm:ss or m:ss)"))
    cpu = float(time_v(text, "User time (seconds)")) + float(time_v(text, "System time (seconds)"))
    cores = os.cpu_count() or 1
    section = "\n".join(
        [
            START,
            "## The test suite: `make test` from a fresh clone",
            "",
            f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} by `bench/suite_time.py` on "
            f"commit {commit}, {cores} cores: a fresh `git clone`, then `make test` under "
            "`/usr/bin/time -v` "
            "(the venv made and qthumb installed from nothing; system packages were already "
            "installed here, so apt did nothing).",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| exit status | {done.returncode} |",
            f"| pytest | {summary[-1] if summary else 'no summary line'} |",
            f"| wall time | {mmss(wall)} |",
            f"| CPU time (user + system, every process) | {cpu:.0f} s |",
            f"| CPU use | {time_v(text, 'Percent of CPU this job got')} |",
            f"| least wall time that CPU allows on {cores} cores | {mmss(cpu / cores)} |",
            "",
            f"Whatever runs the tests, the suite needs {cpu:.0f} CPU seconds: on {cores} cores it "
            f"cannot end in less than {mmss(cpu / cores)}, even with every core busy all the time.",
            END,
        ]
    )
    write_section(section, START, END)
    print(section)
    if done.returncode:
        print(text[-5000:])
        raise SystemExit(done.returncode)


if __name__ == "__main__":
    main()
