"""A small form-posting client for tests: what ``curl -d`` does, with helpers to wait."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.waiting import eventually

TERMINAL = ("completed", "error")


def ended(status: dict[str, Any]) -> dict[str, Any] | None:
    """``status`` (one task's, as the SDKs read it) once the task has ended, else None."""
    return status if status["status"] in TERMINAL else None


class QClient:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.last_token = ""

    def __enter__(self) -> QClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.http.close()

    def post(self, method: str, data: Any) -> dict[str, Any]:
        # A list of pairs may repeat a field (task_tokens[]), as PHP and Node send it.
        pairs = data if isinstance(data, list) else list(data.items())
        response = self.http.post(
            f"/v1/{method}",
            content=urlencode(pairs),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def token(self) -> str:
        reply = self.post("access_token", {"api_key": self.api_key})
        assert reply["error"] == 0, reply
        return str(reply["token"])

    def new_task(self) -> str:
        reply = self.post("create_task", {"token": self.token()})
        assert reply["error"] == 0, reply
        return str(reply["task_token"])

    def start(self, query: dict[str, Any], payload: str | None = None) -> str:
        task = self.new_task()
        data = {"task_token": task, "query": json.dumps({"query": query})}
        if payload is not None:
            data["payload"] = payload
        reply = self.post("start_encode2", data)
        assert reply["error"] == 0, reply
        self.last_token = task  # the task `run` waited for, for the URLs that name it
        return task

    def status(self, task: str) -> dict[str, Any]:
        reply = self.post("status", {"task_tokens": task})
        assert reply["error"] == 0, reply
        entry: dict[str, Any] = reply["statuses"][task]
        return entry

    def wait(self, task: str, timeout: float = 60.0) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def ended() -> dict[str, Any] | None:
            last.update(self.status(task))
            return dict(last) if last["status"] in TERMINAL else None

        return eventually(ended, timeout, lambda: f"task {task} still {last.get('status')}: {last}",
                          every=0.1)  # fmt: skip

    def run(self, query: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        return self.wait(self.start(query), timeout)

    def fetch(self, url: str, **headers: str) -> httpx.Response:
        return self.http.get(url, headers=headers)
