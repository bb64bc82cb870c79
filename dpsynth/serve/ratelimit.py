"""Token buckets: per person for authenticated requests, per client address for failures."""

from __future__ import annotations

import threading
import time

__all__ = ["RateLimiter"]


class RateLimiter:
    """`allow(key)` spends one token from key's bucket (refilled at `per_minute`, holding at
    most `burst`); False — and how long to wait — when the bucket is empty."""

    def __init__(self, per_minute: int, burst: int | None = None, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, per_minute // 6))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def allow(self, key: str) -> tuple[bool, float]:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return True, 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self._max_keys:  # forget full buckets first: they carry no state
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.burst}
            return False, (1.0 - tokens) / self.rate
