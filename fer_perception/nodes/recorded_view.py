"""What ``fer-replay --show`` draws: each image as it is played, with the results the bag recorded for its stamp.

A bag recorded with its results (``fer-record --results``, ``fer-analyze
--bag-out``) holds the faces, expressions and events of each frame on the
graph's topics, written a little after the frame itself. So that an image is
drawn when it is played, not when its results come by, the view reads the
results ahead of the playback, from a second reader of the same bag, up to
:data:`LOOKAHEAD_S` of recording time past the image, and keeps them by their
header stamp until that image is played. It draws what the monitor draws
(boxes, ids, labels, AU bars, the latest events) and hands the image to the
window. A bag without results plays its images as they are; only the first
image topic is shown.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from fer_msgs.msg import Events, Expressions, Faces
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image

from fer_perception.annotate import draw_faces
from fer_perception.event_ticker import EventTicker
from fer_perception.expression_pipeline import FaceExpression
from fer_perception.graph import graph_topics
from fer_perception.image_codec import ImageDecodeError
from fer_perception.nodes.messages import expression_event, face_expression, face_frame, stamp_to_ns
from fer_perception.offline.bags import COMPRESSED_TYPE, IMAGE_TYPES, RawBag, RawMessage, decode_message_image
from fer_perception.types import ExpressionEvent, FaceFrame

LOOKAHEAD_S = 2.0
RESULT_TYPES = {"faces": Faces, "expressions": Expressions, "events": Events}


class RecordedView:
    """Draws the played images of a bag with its recorded results and passes them to ``show``; :meth:`begin` at the
    start of every pass over the bag, :meth:`played` for every message published, :meth:`close` at the end."""

    def __init__(self, bag: RawBag, start_s: float, duration_s: float, show: Callable[[np.ndarray], None]):
        self.image_topic = next(t for t, kind in bag.topics.items() if kind in IMAGE_TYPES)
        self._image_class = CompressedImage if bag.topics[self.image_topic] == COMPRESSED_TYPE else Image
        topics = graph_topics()
        self._result_classes = {topics[kind]: cls for kind, cls in RESULT_TYPES.items()
                                if topics[kind] in bag.available}
        self._results = RawBag(bag.path, list(self._result_classes)) if self._result_classes else None
        self._window = (start_s, duration_s)
        self._show = show
        self._ahead: Iterator[RawMessage] = iter(())
        self._next: RawMessage | None = None
        self.faces: dict[int, FaceFrame] = {}
        self.expressions: dict[int, dict[str, FaceExpression]] = {}
        self.events: dict[int, list[ExpressionEvent]] = {}
        self.ticker = EventTicker()
        self.skipped = 0  # images that could not be decoded

    @property
    def has_results(self) -> bool:
        return self._results is not None

    def begin(self) -> None:
        """Start reading the results again from the start of the played window (a new pass, with ``loop``)."""
        if self._results is not None:
            self._ahead, self._next = self._results.messages(*self._window), None
        self.faces.clear()
        self.expressions.clear()
        self.events.clear()
        self.ticker = EventTicker()

    def played(self, message: RawMessage) -> None:
        """Draw and show ``message`` if it is an image of the shown topic."""
        if message.topic != self.image_topic:
            return
        msg = deserialize_message(message.data, self._image_class)
        try:
            image = decode_message_image(msg)
        except ImageDecodeError:
            self.skipped += 1
            return
        stamp_ns = stamp_to_ns(msg.header.stamp)
        self._read_ahead(message.recorded_ns + round(LOOKAHEAD_S * 1e9))
        for events_stamp in sorted(s for s in self.events if s <= stamp_ns):
            self.ticker.add(events_stamp, self.events.pop(events_stamp))
        frame = self.faces.get(stamp_ns)
        if frame is not None:
            draw_faces(image, frame.faces, self.expressions.get(stamp_ns, {}))
        self.ticker.draw(image, stamp_ns)
        for kept in (self.faces, self.expressions):
            for old in [s for s in kept if s <= stamp_ns]:
                del kept[old]
        self._show(image)

    def close(self) -> None:
        if self._results is not None:
            self._results.close()

    def _read_ahead(self, until_ns: int) -> None:
        """Keep the results recorded up to ``until_ns`` (recording time) by their header stamp."""
        while True:
            if self._next is None:
                self._next = next(self._ahead, None)
                if self._next is None:
                    return
            if self._next.recorded_ns > until_ns:
                return
            message, self._next = self._next, None
            msg = deserialize_message(message.data, self._result_classes[message.topic])
            stamp_ns = stamp_to_ns(msg.header.stamp)
            if isinstance(msg, Faces):
                self.faces[stamp_ns] = face_frame(msg)
            elif isinstance(msg, Expressions):
                self.expressions[stamp_ns] = {e.face_id: face_expression(e) for e in msg.expressions}
            else:
                self.events.setdefault(stamp_ns, []).extend(expression_event(e) for e in msg.events)
