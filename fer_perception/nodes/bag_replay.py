"""fer-replay: publish a bag's image topics into a running graph at the recorded rate, with /clock.

For machines without ``ros2 bag play``: the messages go out as recorded
(serialized bytes, same topic names and types), paced by the bag's recording
times scaled by ``rate``, and ``/clock`` carries the bag time so that nodes
started with ``use_sim_time`` follow the recording. With a system ROS,
``ros2 bag play --clock`` on the same bag gives the graph the same input.

``--show`` plays the session in a window as it is published: each image
with the faces, expressions and events the bag recorded for it, if it has
them (:mod:`fer_perception.nodes.recorded_view`); q or closing the window
stops the replay. It shows the bag, not a running graph's results on it:
those are in the monitor's window (``fer-run monitor:=true``). With
``--show`` the replay starts at once instead of waiting for subscribers.
"""
from __future__ import annotations

import argparse
import importlib
import threading
import time
from pathlib import Path

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rosgraph_msgs.msg import Clock

from fer_perception.live_window import LiveWindow, open_window
from fer_perception.nodes.discovery import SUBSCRIBER_SETTLE_PARAM, wait_for_subscribers
from fer_perception.nodes.messages import ns_to_stamp
from fer_perception.nodes.parameters import Param, declare_parameters
from fer_perception.nodes.qos import IMAGE_PUBLISHER_QOS, reliable
from fer_perception.nodes.recorded_view import RecordedView
from fer_perception.nodes.runtime import run_single_node
from fer_perception.offline.bags import IMAGE_TYPES, BagError, RawBag

PARAMS = [
    Param("bag", "", "rosbag2 bag to play (folder, or its .mcap/.db3 file).", read_only=True),
    Param("topics", "", "Comma-separated topics to publish; empty = every image topic of the bag.", read_only=True),
    Param("rate", 1.0, "Playback speed relative to the recording.", min=0.01, max=100.0, read_only=True),
    Param("loop", False, "Start again at the end.", read_only=True),
    Param("start", 0.0, "Seconds after the bag's start to begin at.", min=0.0, max=1e9, read_only=True),
    Param("duration", 0.0, "Seconds to play; 0 = to the end.", min=0.0, max=1e9, read_only=True),
    Param("clock", True, "Publish /clock with the bag time.", read_only=True),
    Param("wait_for_subscribers", True, "Start playing once every topic has a subscriber (none of the first "
          "messages is lost while the graph discovers the player).", read_only=True),
    SUBSCRIBER_SETTLE_PARAM,
    Param("clock_rate", 40.0, "Hz of /clock while waiting between messages.", min=1.0, max=1000.0, read_only=True),
    Param("show", False, "Show the played images in a window, with the results the bag recorded for them (faces, "
          "expressions, events); q or closing it stops the replay.", read_only=True),
]


def message_class(msgtype: str) -> type:
    """The rclpy class of a type name like ``sensor_msgs/msg/Image``."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


class BagReplayNode(Node):
    """Plays a bag's topics on a worker thread; ``finished`` is set at the end (or when it cannot start), and
    ``failure`` says why where the bag could not be played to its end."""

    def __init__(self, node_name: str = "bag_replay", **kwargs):
        super().__init__(node_name, **kwargs)
        self.config = declare_parameters(self, PARAMS)
        self.finished = threading.Event()
        self.failure: str | None = None  # why the bag could not be played (to its end); the executable exits 1
        self.published = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.view: RecordedView | None = None
        self.window: LiveWindow | None = None
        topics = [t.strip() for t in self.config["topics"].split(",") if t.strip()]
        try:
            self.bag = RawBag(self._bag_path(), topics or None)
        except (BagError, ValueError) as error:
            self.failure = f"cannot play: {error}"
            self.get_logger().error(self.failure)
            self.finished.set()
            return
        self.publishers_by_topic: dict[str, Publisher] = {
            topic: self.create_publisher(message_class(kind), topic, IMAGE_PUBLISHER_QOS)
            for topic, kind in self.bag.topics.items()}
        self.clock_pub = self.create_publisher(Clock, "/clock", reliable(10)) if self.config["clock"] else None
        self.get_logger().info(f"playing {', '.join(self.bag.topics)} of {self.bag.path} at {self.config['rate']}x")
        if self.config["show"]:
            self._open_view()
        self._thread = threading.Thread(target=self._play, name="bag_replay", daemon=True)
        self._thread.start()

    def _open_view(self) -> None:
        if not any(kind in IMAGE_TYPES for kind in self.bag.topics.values()):
            self.get_logger().warning("nothing to show: none of the played topics is an image topic")
            return
        self.window, reason = open_window("always", self._on_window_closed, self.get_logger().warning)
        if reason is not None:
            self.get_logger().warning(f"{reason}: playing without it")
            return
        self.view = RecordedView(self.bag, self.config["start"], self.config["duration"], self.window.show)
        drawn = "with its recorded results" if self.view.has_results else "(the bag has no results to draw)"
        self.get_logger().info(f"showing {self.view.image_topic} in a window {drawn}: q or closing it stops")

    def _on_window_closed(self) -> None:
        self.get_logger().info("window closed: stopping")
        self._stop.set()

    def _bag_path(self) -> Path:
        if not self.config["bag"]:
            raise ValueError("parameter 'bag' is empty")
        return Path(self.config["bag"]).expanduser()

    def _play(self) -> None:
        try:
            if self.config["wait_for_subscribers"]:
                wait_for_subscribers(list(self.publishers_by_topic.values()), self.config["subscriber_settle"],
                                     self._stop, self.get_logger().info)
            while not self._stop.is_set():
                self._play_once()
                if not self.config["loop"]:
                    break
        except BagError as error:
            self.failure = str(error)
            self.get_logger().error(f"stopping after {self.published} messages: {self.failure}")
        finally:
            self.bag.close()
            if self.view is not None:
                self.view.close()
            self.get_logger().info(f"replay ended after {self.published} messages")
            self.finished.set()

    def _play_once(self) -> None:
        rate = self.config["rate"]
        began_wall, began_bag = time.monotonic(), None
        if self.view is not None:
            self.view.begin()
        for message in self.bag.messages(self.config["start"], self.config["duration"]):
            began_bag = message.recorded_ns if began_bag is None else began_bag
            due = began_wall + (message.recorded_ns - began_bag) / 1e9 / rate
            if not self._wait_until(due, message.recorded_ns, began_wall, began_bag, rate):
                return
            self._publish_clock(message.recorded_ns)
            self.publishers_by_topic[message.topic].publish(message.data)
            self.published += 1
            if self.view is not None:
                self.view.played(message)

    def _wait_until(self, due: float, due_ns: int, began_wall: float, began_bag: int, rate: float) -> bool:
        """Sleep until ``due`` (monotonic), publishing /clock meanwhile (never past ``due_ns``, the next
        message's bag time, so the clock never runs backwards); False when stopped."""
        tick = 1.0 / self.config["clock_rate"]
        while (left := due - time.monotonic()) > 0:
            if self._stop.wait(min(left, tick)):
                return False
            self._publish_clock(min(due_ns, began_bag + round((time.monotonic() - began_wall) * rate * 1e9)))
        return not self._stop.is_set()

    def _publish_clock(self, bag_ns: int) -> None:
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=ns_to_stamp(bag_ns)))

    def destroy_node(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self.window is not None:
            self.window.close()
        super().destroy_node()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fer-replay", description=__doc__.split("\n\n")[0],
                                     epilog="ROS arguments (remapping, parameters) follow --ros-args.")
    parser.add_argument("bag", help="rosbag2 bag (folder, or its .mcap/.db3 file)")
    parser.add_argument("--topics", nargs="*", default=[], help="topics to publish (default: every image topic)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed (default 1.0)")
    parser.add_argument("--loop", action="store_true", help="start again at the end")
    parser.add_argument("--start", type=float, default=0.0, help="seconds after the bag's start to begin at")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds to play (0: to the end)")
    parser.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    parser.add_argument("--no-wait", action="store_true", help="play at once, without waiting for subscribers")
    parser.add_argument("--show", action="store_true",
                        help="show the played images in a window with the bag's recorded results (if any); q or "
                             "closing it stops; plays at once (--no-wait)")
    args, ros_args = parser.parse_known_args(argv)
    overrides = {"bag": args.bag, "topics": ",".join(args.topics), "rate": args.rate, "loop": args.loop,
                 "start": args.start, "duration": args.duration, "clock": not args.no_clock,
                 "wait_for_subscribers": not (args.no_wait or args.show), "show": args.show}
    problems = [p.problem(overrides[p.name]) for p in PARAMS if p.name in overrides]
    if any(problems):
        parser.error("; ".join(p for p in problems if p))
    run_single_node(BagReplayNode, ros_args, [Parameter(k, value=v) for k, v in overrides.items()])


main.node_class = BagReplayNode

if __name__ == "__main__":
    main()
