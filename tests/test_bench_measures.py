"""The benchmarks' own measuring helpers measure the processes that exist now: a worker pool's
peak RSS and threads once counted nothing (its command line had changed under them)."""

from __future__ import annotations

from pathlib import Path

from bench.run import pool_statuses, status_value, worker_peak_rss_mb
from tests.conftest import eventually, serving


def test_the_pool_figures_find_the_pool(tmp_path: Path, clips: Path):
    with serving(tmp_path, clips, workers=2) as server:

        def whole_pool() -> list[list[str]] | None:
            # the consumer, its two workers, the spare and huey's scheduler
            found = pool_statuses(server.data_dir)
            return found if len(found) >= 5 else None

        found = eventually(whole_pool, 30, lambda: f"{pool_statuses(server.data_dir)}")
        assert all(status_value(s, "VmHWM") > 0 for s in found)
        assert sum(status_value(s, "Threads") for s in found) >= len(found)
        assert worker_peak_rss_mb(server) > 10  # MB: a Python with PyAV and Pillow loaded
    assert pool_statuses(server.data_dir) == []  # stopped: nothing of it is counted
