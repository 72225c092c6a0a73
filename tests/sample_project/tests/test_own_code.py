"""The team's tests of its own code: `app` and `workers` are theirs, whatever is installed."""

from pathlib import Path

import app.main
import workers.jobs

PROJECT = Path(__file__).resolve().parent.parent


def test_app_is_ours():
    assert app.main.create_app() == {"title": "the team's app"}
    assert Path(app.main.__file__).resolve().is_relative_to(PROJECT)


def test_workers_is_ours():
    assert workers.jobs.resize(320) == 160
    assert Path(workers.jobs.__file__).resolve().is_relative_to(PROJECT)
