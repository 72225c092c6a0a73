"""Frames on demand cannot starve the Qencode API: they run in threads of their own, a few at
once (``QTHUMB_ON_DEMAND_CONCURRENCY``) with a bounded queue (``QTHUMB_ON_DEMAND_QUEUE``).
Asked of a source that never answers, the ones past the queue get 503 with ``Retry-After`` at
once, and ``status``, ``create_task`` and ``start_encode2`` keep answering meanwhile. (How
fast is measured in ``bench/on_demand_storm.py``, not asserted here.)"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.conftest import API_KEY, eventually, make_qthumb
from tests.qclient import QClient
from tests.test_on_demand import Stalling, stalling_source  # noqa: F401  (fixture)

CONCURRENCY, QUEUE, STORM = 2, 3, 12


def test_a_storm_of_frames_leaves_the_api_alone(
    tmp_path: Path,
    clips: Path,
    stalling_source: Stalling,  # noqa: F811
):
    server = make_qthumb(tmp_path, clips, QTHUMB_ON_DEMAND_CONCURRENCY=str(CONCURRENCY),
                         QTHUMB_ON_DEMAND_QUEUE=str(QUEUE),
                         QTHUMB_SOURCE_READ_TIMEOUT="60")  # fmt: skip
    answers: list[httpx.Response | Exception] = []
    lock = threading.Lock()
    try:
        server.listen("api")  # no workers: the task stays queued, its source is never read
        with QClient(server.base_url, API_KEY) as api:
            slow = api.start({"source": stalling_source.url, "format": [{"output": "metadata"}]})

            def ask(n: int) -> None:
                try:
                    answer: httpx.Response | Exception = httpx.get(
                        f"{server.base_url}/v1/thumbnail.jpg",
                        params={"task_token": slow, "time": str(n)},
                        timeout=120,
                    )
                except httpx.HTTPError as exc:  # the held ones, when the server stops
                    answer = exc
                with lock:
                    answers.append(answer)

            storm = [threading.Thread(target=ask, args=(n,), daemon=True) for n in range(STORM)]
            for thread in storm:
                thread.start()
            refused = STORM - CONCURRENCY - QUEUE
            eventually(lambda: len(answers) >= refused, 60, lambda: f"answers: {answers}")
            with lock:
                busy = [a for a in answers if isinstance(a, httpx.Response)]
            assert len(busy) == refused, answers
            for answer in busy:
                assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
                assert answer.json()["error"] == 1 and "retry shortly" in answer.json()["message"]
            # the held ones are waiting on the origin, which holds their connections
            eventually(lambda: stalling_source.held, 30, lambda: "the source was never asked")
            for _ in range(5):  # the Qencode API answers throughout
                assert api.status(slow)["status"] == "queued"
                other = api.start({"source": str(clips / "index.mp4"),
                                   "format": [{"output": "thumbnail"}]})  # fmt: skip
                assert api.status(other)["status"] == "queued"
            assert len(answers) == refused  # and the held frames are still held
    finally:
        server.stop()
