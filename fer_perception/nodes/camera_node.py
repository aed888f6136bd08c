"""camera_node: publishes frames of a webcam, a video file or a folder of images as sensor_msgs/Image.

Users with their own camera driver skip this node and remap the perception's
input topic. Frames are captured on a thread of their own, so a slow or
vanished camera never blocks the executor; stamps are the clock's time at
capture, or the media's own timeline (``stamp_source: media``), in which case
the node also publishes ``/clock`` so that a graph running with
``use_sim_time`` follows the video.

It is a lifecycle node (:mod:`fer_perception.nodes.lifecycle`): configuring
creates the publishers, activating opens the source and starts the capture,
deactivating stops it and closes the source (a webcam is released for others;
a file starts again from its beginning on the next activation). With
``wait_for_subscribers`` the capture holds the first frame until the graph is
ready: the image topic has a subscriber and every node of ``wait_for_nodes``
says it is active. fer-run and the launch file activate the camera after the
perception anyway; the wait is what keeps a file from being played into a
graph started all at once without a lifecycle manager. Its status (frame
rate, publishing time) goes to ``/diagnostics``
(:mod:`fer_perception.nodes.diagnostics`); waiting for the graph and the end
of a file are reported as OK, a source that stops delivering as ERROR.
"""
from __future__ import annotations

import threading
import time

import cv2
from builtin_interfaces.msg import Time
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from fer_perception.nodes.diagnostics import DIAGNOSTICS_PARAMS, NodeDiagnostics
from fer_perception.nodes.discovery import SUBSCRIBER_SETTLE_PARAM, ActiveNodes, wait_for_subscribers
from fer_perception.nodes.lifecycle import ManagedNode, reports_start_errors
from fer_perception.nodes.messages import bgr8_image_msg
from fer_perception.nodes.parameters import Param, parameter_values
from fer_perception.nodes.qos import IMAGE_PUBLISHER_QOS, QOS_OVERRIDES, reliable
from fer_perception.nodes.runtime import node_main
from fer_perception.paths import demo_clip
from fer_perception.video_source import Frame, FrameSource, SourceError, open_source

PARAMS = [
    Param("source", "auto", "Webcam index or /dev/videoN, video file, image, folder of images, "
          "or 'auto' (webcam 0 if present, else the bundled demo clip).", read_only=True),
    Param("rate", 0.0, "Publishing rate in Hz; 0 = the source's own rate (webcam and video), "
          "'folder_rate' for images.", min=0.0, max=240.0),
    Param("folder_rate", 10.0, "Rate in Hz for images and folders when 'rate' is 0.", min=0.1, max=240.0),
    Param("unthrottled", False, "Publish as fast as frames can be read (benchmarks); ignores 'rate'."),
    Param("loop", False, "Start the file or folder again at its end instead of ending the node."),
    Param("frame_id", "camera", "frame_id of the published images and camera info.", read_only=True),
    Param("stamp_source", "capture", "'capture': the node clock when the frame was read; "
          "'media': the media's timeline from 0 s, also published on /clock for use_sim_time.",
          choices=("capture", "media"), read_only=True),
    Param("width", 0, "Requested webcam width in pixels (0 = the camera's default).", min=0, max=7680,
          read_only=True),
    Param("height", 0, "Requested webcam height in pixels (0 = the camera's default).", min=0, max=4320,
          read_only=True),
    Param("wait_for_subscribers", False, "Hold the first frame until the image topic has a subscriber and every "
          "node of wait_for_nodes is active (no frame is published into the void).", read_only=True),
    Param("wait_for_nodes", "", "Comma-separated lifecycle nodes that must be active before the first frame, "
          "with wait_for_subscribers (asked through their get_state service; names resolve like topic names). The "
          "graph sets its perception nodes.", read_only=True),
    Param("wait_timeout", 30.0, "Seconds wait_for_subscribers waits at most; then the camera plays anyway, with "
          "one warning naming what it waited for.", min=0.0, max=3600.0, read_only=True),
    SUBSCRIBER_SETTLE_PARAM,
    *DIAGNOSTICS_PARAMS,
]


def stamp_from_seconds(seconds: float) -> Time:
    nanoseconds = int(round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


class CameraNode(ManagedNode):
    """Publishes ``image_raw`` and ``camera_info`` from a :class:`FrameSource` while active.

    ``finished`` is set when a file or folder ends without ``loop``; the
    stand-alone executable and the runner then shut down cleanly.
    """

    def __init__(self, node_name: str = "camera", **kwargs):
        super().__init__(node_name, PARAMS, **kwargs)
        self.config: dict = {}
        self.media_stamps = False
        self.image_pub = self.info_pub = self.clock_pub = None
        self.source: FrameSource | None = None
        self.finished = threading.Event()
        self.diagnostics = NodeDiagnostics(self, "image source")
        self._last_stamp_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._active_nodes: ActiveNodes | None = None

    @reports_start_errors
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.config = parameter_values(self, PARAMS)
        self.media_stamps = self.config["stamp_source"] == "media"
        self.image_pub = self.create_lifecycle_publisher(Image, "image_raw", IMAGE_PUBLISHER_QOS,
                                                         qos_overriding_options=QOS_OVERRIDES)
        self.info_pub = self.create_lifecycle_publisher(CameraInfo, "camera_info", IMAGE_PUBLISHER_QOS,
                                                        qos_overriding_options=QOS_OVERRIDES)
        self.clock_pub = (self.create_lifecycle_publisher(Clock, "/clock", reliable(10),
                                                          qos_overriding_options=QOS_OVERRIDES)
                          if self.media_stamps else None)
        self.diagnostics.create_publisher()
        return super().on_configure(state)

    @reports_start_errors
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop = threading.Event()
        self.source = open_source(self.config["source"], self.config["folder_rate"], demo_clip(),
                                  self.config["width"], self.config["height"], self._stop)
        self.finished.clear()
        self.failure = None
        wait_for = [name.strip() for name in self.config["wait_for_nodes"].split(",") if name.strip()]
        self._active_nodes = ActiveNodes(self, wait_for) if self.config["wait_for_subscribers"] else None
        result = super().on_activate(state)  # the publishers publish from here on
        self.diagnostics.start(self.source.description, f"OpenCV {cv2.__version__}")
        self.get_logger().info(f"publishing {self.source.description} on {self.image_pub.topic_name}")
        self._thread = threading.Thread(target=self._capture_loop, name="camera_capture", daemon=True)
        self._thread.start()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.diagnostics.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self._active_nodes is not None:
            self._active_nodes.destroy()
            self._active_nodes = None
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for publisher in (self.image_pub, self.info_pub, self.clock_pub):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self.image_pub = self.info_pub = self.clock_pub = None
        self.diagnostics.destroy_publisher()
        return super().on_cleanup(state)

    @property
    def published(self) -> int:
        """Frames published since the node was activated."""
        return self.diagnostics.stats.processed_total

    def _period(self) -> float:
        """Seconds between frames, read each frame so that a changed 'rate' applies at once."""
        if self.get_parameter("unthrottled").value:
            return 0.0
        rate = self.get_parameter("rate").value
        if rate > 0:
            return 1.0 / rate
        return 0.0 if self.source.is_live else 1.0 / self.source.nominal_rate

    def _capture_loop(self) -> None:
        try:
            self._stream()
        finally:
            self.source.close()
            self.finished.set()

    def _stream(self) -> None:
        stats = self.diagnostics.stats
        if self.config["wait_for_subscribers"]:
            stats.idle("waiting for the graph to be ready")
            if not wait_for_subscribers([self.image_pub], self.config["subscriber_settle"], self._stop,
                                        self.get_logger().info, nodes=self._active_nodes,
                                        timeout_s=self.config["wait_timeout"], warn=self.get_logger().warning):
                return
            self.get_logger().info(f"graph ready: playing {self.source.description}")
            stats.expect_input()
        media_offset = 0.0
        next_due = float("-inf")
        while not self._stop.is_set():
            frame = self.source.read()
            if frame is None:
                if not self.get_parameter("loop").value:
                    end = f"end of {self.source.description} after {self.published} frames"
                    stats.idle(end)
                    self.get_logger().info(end)
                    return
                media_offset = self._last_stamp_s + (1.0 / self.source.nominal_rate)
                try:
                    self.source.rewind()
                except SourceError as error:
                    self.failure = f"cannot loop {self.source.description}: {error}"
                    self.get_logger().error(f"{self.failure}; stopping after {self.published} frames")
                    return
                continue
            stats.received()
            period = self._period()
            next_due = max(next_due + period, time.monotonic())
            if self._stop.wait(max(0.0, next_due - time.monotonic())):
                return
            self._publish(frame, media_offset)

    def _publish(self, frame: Frame, media_offset: float) -> None:
        started = time.monotonic()
        self._last_stamp_s = media_offset + frame.media_time_s
        if self.media_stamps:
            stamp = stamp_from_seconds(self._last_stamp_s)
            self.clock_pub.publish(Clock(clock=stamp))
        else:
            stamp = self.get_clock().now().to_msg()
        header = Header(stamp=stamp, frame_id=self.config["frame_id"])
        image = bgr8_image_msg(frame.image, header)
        info = CameraInfo(header=header, height=image.height, width=image.width)
        self.image_pub.publish(image)
        self.info_pub.publish(info)
        self.diagnostics.stats.processed(time.monotonic() - started)


main = node_main(CameraNode)

if __name__ == "__main__":
    main()
