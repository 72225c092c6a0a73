"""The pytest plugin (entry point ``pytest11: qthumb``): off until a test asks for the
``qthumb`` fixture, then one qthumb for the session (``app.testing.qthumb_server``).

    def test_sprite(qthumb):
        client = qencode3.client(qthumb.api_key, api_url=qthumb.url)
        …
        status = qthumb.wait(task.task_token)

Options: ``--qthumb-workers N`` (default 2); ini ``qthumb_url`` + ``qthumb_api_key`` (or the
``QTHUMB_TEST_URL`` / ``QTHUMB_TEST_API_KEY`` environment) to use a qthumb that is already
running, a CI service container, instead of starting one; ini ``qthumb_seed`` (or
``--qthumb-seed``) for the same API key and the same tokens on every run (``QTHUMB_SEED``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from qthumb.app.testing import QthumbServer, external_server, qthumb_server


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qthumb", "qthumb: a local Qencode-compatible API")
    group.addoption(
        "--qthumb-workers",
        type=int,
        default=None,
        help="worker processes of the qthumb the fixture starts (default: 2)",
    )
    group.addoption(
        "--qthumb-seed",
        default=None,
        help="the same API key and tokens on every run (QTHUMB_SEED; predictable tokens)",
    )
    parser.addini("qthumb_seed", "the same API key and tokens on every run", default="")
    parser.addini("qthumb_url", "use this running qthumb instead of starting one", default="")
    parser.addini("qthumb_api_key", "the API key of the qthumb at qthumb_url", default="")
    parser.addini(
        "qthumb_workers", "worker processes of the qthumb the fixture starts", default="2"
    )


@pytest.fixture(scope="session")
def qthumb(pytestconfig: pytest.Config) -> Iterator[QthumbServer]:
    """A qthumb for the session: ``url``, ``api_key``, ``media_dir``, ``storage_path``,
    ``wait(task_token)``, ``status(task_token)``."""
    url = os.environ.get("QTHUMB_TEST_URL") or str(pytestconfig.getini("qthumb_url"))
    if url:
        key = os.environ.get("QTHUMB_TEST_API_KEY") or str(pytestconfig.getini("qthumb_api_key"))
        if not key:
            raise pytest.UsageError("qthumb_url is set: set qthumb_api_key too")
        yield external_server(url, key, os.environ.get("QTHUMB_TEST_MEDIA_DIR"))
        return
    option = pytestconfig.getoption("qthumb_workers")
    workers = int(option if option is not None else pytestconfig.getini("qthumb_workers"))
    seed = pytestconfig.getoption("qthumb_seed") or str(pytestconfig.getini("qthumb_seed"))
    started = qthumb_server(workers=workers, seed=seed) if seed else qthumb_server(workers=workers)
    with started as server:
        yield server
