"""Log rate limiting: a repeated error (an unreachable API server, a file-descriptor
shortage at accept) must not fill the disk."""

from __future__ import annotations

import logging
import time
from typing import Callable

BURST, PERIOD = 5, 60.0


class RateLimit(logging.Filter):
    """Passes at most `burst` records of one logger, level and message template per
    `period` seconds; the first record of the next period says how many were dropped."""

    def __init__(
        self,
        burst: int = BURST,
        period: float = PERIOD,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1000,
    ) -> None:
        super().__init__()
        self.burst, self.period, self.clock, self.max_keys = burst, period, clock, max_keys
        self._seen: dict[tuple, list] = {}  # key -> [window start, passed, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = self.clock()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.period:
            suppressed = entry[2] if entry is not None else 0
            if len(self._seen) >= self.max_keys:
                self._seen.clear()
            self._seen[key] = [now, 1, 0]
            if suppressed:
                record.msg, record.args = f"{record.getMessage()} [{suppressed} similar messages suppressed]", None
            return True
        if entry[1] < self.burst:
            entry[1] += 1
            return True
        entry[2] += 1
        return False


def install(handler_owner: logging.Logger | None = None) -> None:
    """Adds the filter to every handler of the root logger (or `handler_owner`)."""
    for handler in (handler_owner or logging.getLogger()).handlers:
        handler.addFilter(RateLimit())
