"""Warnings rate-limited per cause, so that one fault's flood cannot hide another fault's first line.

rclpy's ``throttle_duration_sec`` limits a log call site: after a bayer frame's
warning, a zero-size frame's went unseen for the rest of the period. Nodes
ask :class:`CauseThrottle` instead, keyed by the fault's cause
(``ImageDecodeError.cause``).
"""
from __future__ import annotations

import time
from collections.abc import Callable

WARNING_PERIOD_S = 5.0
"""At most one line per cause in this many seconds."""


class CauseThrottle:
    """Says whether a line about ``cause`` may be logged now; counts what it held back."""

    def __init__(self, period_s: float = WARNING_PERIOD_S, clock: Callable[[], float] = time.monotonic):
        self.period_s = period_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    @property
    def logged(self) -> set[str]:
        """The causes a line has been logged for."""
        return set(self._last)

    def due(self, cause: str) -> bool:
        now = self._clock()
        last = self._last.get(cause)
        if last is not None and now - last < self.period_s:
            self.suppressed[cause] = self.suppressed.get(cause, 0) + 1
            return False
        self._last[cause] = now
        return True

    def note(self, cause: str) -> str:
        """`` (N more since the last line)`` when lines of ``cause`` were held back, else empty; resets it."""
        held = self.suppressed.pop(cause, 0)
        return f" ({held} more since the last line)" if held else ""
