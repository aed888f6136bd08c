"""A one-item mailbox that always holds the newest item and counts the ones it replaced.

Perception nodes receive frames faster than they may process them; they
should work on the newest frame and say how many they skipped. The
subscription callback only ``put``s; a worker ``take``s.
"""
from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Thread-safe newest-item slot; ``skipped`` counts items replaced before being taken."""

    def __init__(self) -> None:
        self._item: T | None = None
        self._full = False
        self._closed = False
        self._condition = threading.Condition()
        self.skipped = 0

    def put(self, item: T) -> None:
        with self._condition:
            if self._full:
                self.skipped += 1
            self._item, self._full = item, True
            self._condition.notify()

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
        self.missed = 0

    def observe(self, publisher: bytes, sequence: int | None) -> None:
        if sequence is None:
            return
        last = self._last.get(publisher)
        if last is not None and sequence > last + 1:
            self.missed += sequence - last - 1
        self._last[publisher] = sequence
