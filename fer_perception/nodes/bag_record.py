"""fer-record: write the camera topic, and optionally the result topics, to a rosbag2 bag.

For machines without ``ros2 bag record`` (the original system's webcam
record mode): messages are stored as they arrive, still serialized, with
their receive time, through ``rosbags``; the bag (mcap by default) replays
with ``fer-replay`` or ``ros2 bag play`` and analyses with ``fer-analyze``.
The bag is closed cleanly on Ctrl-C, SIGTERM or after ``duration`` seconds
(exit status 0: the bag is what was asked for).
"""
from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from fer_msgs.msg import Events, Expressions, Faces
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image

from fer_perception.graph import graph_topics
from fer_perception.nodes.parameters import Param, declare_parameters
from fer_perception.nodes.qos import SENSOR_QOS, reliable
from fer_perception.nodes.runtime import run_single_node
from fer_perception.offline.bags import add_connection, open_writer, written_bag

PARAMS = [
    Param("out", "session.mcap", "Bag to write: name.mcap (default) or name.db3; the bag is the folder 'name'.",
          read_only=True),
    Param("image_transport", "raw", "Record the image topic as sensor_msgs/Image (raw) or "
          "CompressedImage on '<image>/compressed' (compressed).", choices=("raw", "compressed"), read_only=True),
    Param("results", False, "Also record faces, expressions and events.", read_only=True),
    Param("duration", 0.0, "Seconds to record; 0 = until Ctrl-C.", min=0.0, max=1e9, read_only=True),
]
RESULT_TYPES = {"faces": Faces, "expressions": Expressions, "events": Events}
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class BagRecordNode(Node):
    """Subscribes without deserializing and appends each message to the bag."""

    def __init__(self, node_name: str = "bag_record", **kwargs):
        super().__init__(node_name, **kwargs)
        self.config = declare_parameters(self, PARAMS)
        self.finished = threading.Event()
        self.counts: dict[str, int] = {}
        self.path = written_bag(Path(self.config["out"]))
        self._writer = open_writer(Path(self.config["out"]))
        image_type = Image if self.config["image_transport"] == "raw" else CompressedImage
        image_topic = self.resolve_topic_name("image") + ("" if image_type is Image else "/compressed")
        self._record(image_topic, image_type, SENSOR_QOS)
        if self.config["results"]:
            topics = graph_topics()
            for name, kind in RESULT_TYPES.items():
                self._record(topics[name], kind, reliable(100))
        if self.config["duration"] > 0:
            self._timer = self.create_timer(self.config["duration"], self.finished.set)
        self.get_logger().info(f"recording {', '.join(self.counts)} to {self.path}")

    def _record(self, topic: str, kind: type, qos) -> None:
        msgtype = f"{kind.__module__.split('.')[0]}/msg/{kind.__name__}"
        connection = add_connection(self._writer, topic, msgtype)
        self.counts[topic] = 0

        def store(data: bytes) -> None:
            if not self.finished.is_set():
                # The stop signals raise KeyboardInterrupt in this thread (runtime.py); held back while a
                # message is written, they cannot leave half a record in the bag for the close to seal.
                signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
                try:
                    self._writer.write(connection, self.get_clock().now().nanoseconds, data)
                    self.counts[topic] += 1
                finally:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

        self.create_subscription(kind, topic, store, qos, raw=True)

    def destroy_node(self) -> None:
        self._writer.close()
        self.get_logger().info(f"wrote {self.path}: " + ", ".join(f"{t} {n}" for t, n in self.counts.items()))
        super().destroy_node()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fer-record", description=__doc__.split("\n\n")[0],
                                     epilog="The image topic is 'image' (remap it with --ros-args -r "
                                            "image:=/my/topic); default /camera/image_raw.")
    parser.add_argument("--out", default="session.mcap", help="bag to write (name.mcap or name.db3)")
    parser.add_argument("--topic", default=graph_topics("face_detection")["image"], help="image topic")
    parser.add_argument("--compressed", action="store_true", help="record <topic>/compressed (CompressedImage)")
    parser.add_argument("--results", action="store_true", help="also record faces, expressions and events")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds to record (0: until Ctrl-C)")
    args, ros_args = parser.parse_known_args(argv)
    if written_bag(Path(args.out)).exists():
        parser.error(f"{written_bag(Path(args.out))} exists already; choose another --out")
    if args.duration < 0:
        parser.error("--duration must not be negative")
    overrides = {"out": args.out, "image_transport": "compressed" if args.compressed else "raw",
                 "results": args.results, "duration": args.duration}
    ros_args = ros_args or ["--ros-args"]
    run_single_node(BagRecordNode, [*ros_args, "-r", f"image:={args.topic}"],
                    [Parameter(k, value=v) for k, v in overrides.items()])


main.node_class = BagRecordNode

if __name__ == "__main__":
    main()
