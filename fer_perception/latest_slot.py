"""A one-item mailbox that always holds the newest item and counts the ones it replaced.

Perception nodes receive frames faster than they may process them; they
should work on the newest frame and say how many they skipped. The
subscription callback only ``put``s (and learns whether an unprocessed item
was replaced); a worker ``take``s.
"""
from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Thread-safe newest-item slot."""

    def __init__(self) -> None:
        self._item: T | None = None
        self._full = False
        self._closed = False
        self._condition = threading.Condition()

    def put(self, item: T) -> bool:
        """Hold ``item``; whether it replaced an item that was never taken (skipped)."""
        with self._condition:
            replaced = self._full
            self._item, self._full = item, True
            self._condition.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to ``timeout``; ``None`` on time-out or after :meth:`close`."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        """Wake every waiting ``take`` for good."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()


class SequenceGaps:
    """Counts messages a subscriber never saw, from the publishers' sequence numbers.

    With a keep-last-1 subscription, frames that arrive while the node is
    busy are overwritten before any callback sees them; the gap in the
    publisher's sequence numbers is the only trace they leave.
    """

    def __init__(self) -> None:
        self._last: dict[bytes, int] = {}

    def observe(self, publisher: bytes, sequence: int | None) -> int:
        """Note message ``sequence`` of ``publisher``; how many of its messages before it were never seen."""
        if sequence is None:
            return 0
        last = self._last.get(publisher)
        self._last[publisher] = sequence
        return sequence - last - 1 if last is not None and sequence > last + 1 else 0
