"""Slowing down key guessing: every wrong API key a client address sends takes a token from
that address's bucket (``QTHUMB_KEY_ATTEMPTS_PER_MINUTE`` tokens, refilled at that rate);
with the bucket empty, a wrong key sent to ``/v1/access_token``, the console's sign-in or the
control endpoints (``/_qthumb/``) is answered 429 with ``Retry-After`` until a token is back.
Only wrong keys are counted and refused: a right key is answered as usual from any address,
the guessing one included, so one test suite checking that a bad key is refused never locks
out the other jobs behind the same address. (What a guesser learns during the limit is only
what a right key answers; API keys are 12-128 characters of 64 kinds, the dev key 128 random
bits: the limit slows guessing down and makes it visible, the keys' length makes it hopeless.)
Per API process (each replica counts its own). The address is the peer's, or what a proxy
named in ``QTHUMB_FORWARDED_ALLOW_IPS`` forwards.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request

MAX_ADDRESSES = 10_000  # buckets kept; full ones are forgotten first


class KeyGuard:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address: (tokens, as of)
        self._lock = threading.Lock()

    def _tokens(self, address: str, now: float) -> float:
        tokens, since = self._buckets.get(address, (self.capacity, now))
        return min(self.capacity, tokens + (now - since) * self.rate)

    def wait(self, address: str) -> int | None:
        """Seconds before a wrong key from ``address`` is answered as wrong again; ``None``:
        its bucket has a token."""
        if self.capacity <= 0:
            return None
        with self._lock:
            return self._wait(self._tokens(address, self.clock()))

    def _wait(self, tokens: float) -> int | None:
        return None if tokens >= 1 else max(1, math.ceil((1 - tokens) / self.rate))

    def wrong(self, address: str) -> int | None:
        """``address`` sent a wrong key: ``None`` when it had a token to spend (the key is
        answered as wrong), else the seconds until it has one (the key is answered 429)."""
        if self.capacity <= 0:
            return None
        with self._lock:
            now = self.clock()
            tokens = self._tokens(address, now)
            wait = self._wait(tokens)
            if wait is not None:
                return wait
            if len(self._buckets) >= MAX_ADDRESSES:
                self._forget_full(now)
            self._buckets[address] = (tokens - 1, now)
            return None

    def _forget_full(self, now: float) -> None:
        full = [a for a in self._buckets if self._tokens(a, now) >= self.capacity]
        for address in full or list(self._buckets)[: MAX_ADDRESSES // 10]:
            del self._buckets[address]


def client_address(request: Request) -> str:
    """The address whose wrong keys count together: the peer's, or the client a proxy named
    in ``QTHUMB_FORWARDED_ALLOW_IPS`` forwards for (uvicorn reads the header from those
    proxies only)."""
    return request.client.host if request.client else ""
