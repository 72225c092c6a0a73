"""Slowing down key guessing: every wrong API key a client address sends takes a token from
that address's bucket (``QTHUMB_KEY_ATTEMPTS_PER_MINUTE`` tokens, refilled at that rate);
with the bucket empty, ``/v1/access_token`` and the console's sign-in answer 429 with
``Retry-After`` until a token is back, without looking at the key. Nothing is locked for
good and no key is locked: the right key from any other address works throughout, and from
the guessing address again within a few seconds. Per API process (each replica counts its own).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

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
        """Seconds ``address`` must wait before a key is looked at; ``None``: go ahead."""
        if self.capacity <= 0:
            return None
        with self._lock:
            tokens = self._tokens(address, self.clock())
        return None if tokens >= 1 else max(1, math.ceil((1 - tokens) / self.rate))

    def wrong(self, address: str) -> None:
        """``address`` sent a wrong key."""
        if self.capacity <= 0:
            return
        with self._lock:
            now = self.clock()
            if len(self._buckets) >= MAX_ADDRESSES:
                self._forget_full(now)
            self._buckets[address] = (self._tokens(address, now) - 1, now)

    def _forget_full(self, now: float) -> None:
        full = [a for a in self._buckets if self._tokens(a, now) >= self.capacity]
        for address in full or list(self._buckets)[: MAX_ADDRESSES // 10]:
            del self._buckets[address]
