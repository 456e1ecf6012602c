"""A per-caller rate limit: a fixed one-minute window, kept in this process."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._windows: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count a request; return the seconds to wait if over the limit, else None."""
        if self.per_minute <= 0:
            return None
        now = time.time()
        window = int(now // 60)
        with self._lock:
            start, count = self._windows.get(key, (window, 0))
            if start != window:
                start, count = window, 0
            count += 1
            self._windows[key] = (start, count)
            if len(self._windows) > 100_000:  # forget old windows rather than grow without end
                self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        if count > self.per_minute:
            return max(1.0, (window + 1) * 60 - now)
        return None
