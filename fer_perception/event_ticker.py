"""The latest events, written at the bottom of the frames that follow them, so that a person watching sees them.

Events come as their own messages, after the frames they belong to; the
ticker keeps the sentences of the last few (:func:`report.event_sentence`,
as the behaviour example prints them) for ``hold_s`` seconds of stream time
and writes them onto each frame drawn meanwhile, in the face's colour, newest
at the bottom. The monitor's video and window and ``fer-replay --show`` use it.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from fer_perception.annotate import MIN_TEXT_PX, draw_text, track_colour
from fer_perception.report import event_sentence
from fer_perception.types import ExpressionEvent

HOLD_S = 3.0
MAX_LINES = 4
TEXT_PER_SIDE = 40  # text height: the frame's shorter side over this, at least MIN_TEXT_PX


class EventTicker:
    """Recent event sentences with the stamp they came at; :meth:`draw` writes those still due onto a frame."""

    def __init__(self, hold_s: float = HOLD_S, max_lines: int = MAX_LINES):
        self.hold_ns = round(hold_s * 1e9)
        self.lines: deque[tuple[int, str, tuple[int, int, int]]] = deque(maxlen=max_lines)

    def add(self, stamp_ns: int, events: list[ExpressionEvent]) -> None:
        """The events of one events message, stamped ``stamp_ns`` (its header)."""
        for event in events:
            self.lines.append((stamp_ns, event_sentence(event), track_colour(event.face_id)))

    def draw(self, image: np.ndarray, stamp_ns: int) -> None:
        """Write the sentences added within ``hold_s`` before ``stamp_ns`` (and any later) onto ``image``."""
        due = [(text, colour) for added_ns, text, colour in self.lines if added_ns >= stamp_ns - self.hold_ns]
        height = max(MIN_TEXT_PX, round(min(image.shape[:2]) / TEXT_PER_SIDE))
        pitch = height + max(4, height // 2)
        for row, (text, colour) in enumerate(reversed(due)):
            draw_text(image, text, (height // 2, image.shape[0] - height // 2 - row * pitch), height, colour)
