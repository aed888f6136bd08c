"""Analysis results as a rosbag2 bag of ``fer_msgs`` messages (``fer-analyze --bag-out``).

The messages are built by the same conversions the live nodes publish with
(``nodes/messages.py``) and serialized by rclpy, so a result bag holds exactly
what the live graph would have published for those frames: faces,
expressions and events on the graph's topics, stamped with the source image's
header, and optionally the input images on the input's image topic. The
bag's type definitions come from ``fer_msgs/msg/*.msg`` (see ``bags.py``), so
Foxglove, ``ros2 bag play`` and ``rosbags`` read it without this package.
"""
from __future__ import annotations

from pathlib import Path

from fer_msgs.msg import Events, Expressions, Faces
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Writer
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fer_perception.graph import graph_topics
from fer_perception.nodes.messages import bgr8_image_msg, events_msg, expressions_msg, faces_msg, ns_to_stamp
from fer_perception.offline.analysis import AnalysedFrame
from fer_perception.offline.bags import IMAGE_TYPE, add_connection, open_writer, written_bag
from fer_perception.types import ExpressionEvent

FACES_TYPE, EXPRESSIONS_TYPE, EVENTS_TYPE = "fer_msgs/msg/Faces", "fer_msgs/msg/Expressions", "fer_msgs/msg/Events"


class ResultBagWriter:
    """Writes each analysed frame's messages, with the frame's stamp as the bag time."""

    def __init__(self, path: Path, image_topic: str | None = None):
        """``image_topic``: also write the input images there (``sensor_msgs/Image``, bgr8)."""
        self.path = written_bag(path)
        topics = graph_topics()
        self._writer: Writer = open_writer(path)
        self._faces = add_connection(self._writer, topics["faces"], FACES_TYPE)
        self._expressions = add_connection(self._writer, topics["expressions"], EXPRESSIONS_TYPE)
        self._events = add_connection(self._writer, topics["events"], EVENTS_TYPE)
        self._images = add_connection(self._writer, image_topic, IMAGE_TYPE) if image_topic else None
        self.counts = {"faces": 0, "expressions": 0, "events": 0, "images": 0}
        self._last_header = Header()

    def add(self, analysed: AnalysedFrame) -> None:
        frame = analysed.frame
        header = Header(stamp=ns_to_stamp(frame.stamp_ns), frame_id=frame.frame_id)
        self._last_header = header
        if self._images is not None:
            self._write(self._images, "images", bgr8_image_msg(frame.image, header), frame.stamp_ns)
        self._write(self._faces, "faces", faces_msg(analysed.faces, header), frame.stamp_ns)
        self._write(self._expressions, "expressions", expressions_msg(analysed.result, header), frame.stamp_ns)
        if analysed.result.events:
            self._write(self._events, "events", events_msg(analysed.result.events, header), frame.stamp_ns)

    def close(self, closing_events: list[ExpressionEvent]) -> None:
        """Write the episodes closed at the end of the input, then finish the bag."""
        if closing_events:
            stamp_ns = closing_events[0].end_ns
            self._write(self._events, "events", events_msg(closing_events, self._last_header), stamp_ns)
        self._writer.close()

    def _write(self, connection, kind: str, msg: Faces | Expressions | Events | Image, stamp_ns: int) -> None:
        self._writer.write(connection, stamp_ns, serialize_message(msg))
        self.counts[kind] += 1
