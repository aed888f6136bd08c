"""monitor_node: shows what the graph sees, as a person watching the robot would want it.

It prints one line per face (at most every ``print_interval`` seconds) and
writes ``out_dir/annotated.mp4`` (the camera frames with faces, ids, labels,
AU bars and the latest events drawn on) and ``out_dir/faces.csv`` (one row
per face per frame, the columns of ``fer-analyze``'s ``frames.csv``;
``source`` is the image topic and ``frame`` counts the faces messages).
Frames are written when their expressions arrive (faces, then expressions,
matched by stamp); frames the expression stage skipped are written with
faces only. Files are closed when the node is destroyed, also on Ctrl-C. It
is a consumer like any other: the perception graph does not depend on it.
Where a display is present (``show``), the same frames play in a window
(:mod:`fer_perception.live_window`); closing it or pressing q sets
``stop_requested``, which ends the run as Ctrl-C does.
Its status on ``/diagnostics`` (:mod:`fer_perception.nodes.diagnostics`)
counts camera frames: written (drawing and writing timed) or dropped, as bad
frames or because their results did not come while ``frame_buffer`` held them.
"""
from __future__ import annotations

import csv
import threading
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np
from fer_msgs.msg import Events, Expressions, Faces
from rclpy.node import Node
from sensor_msgs.msg import Image

from fer_perception.annotate import draw_faces, letterbox
from fer_perception.image_codec import ImageDecodeError, decode_image
from fer_perception.event_ticker import EventTicker
from fer_perception.expression_pipeline import FaceExpression
from fer_perception.live_window import SHOW_CHOICES, open_window
from fer_perception.nodes.diagnostics import DIAGNOSTICS_PARAMS, NodeDiagnostics
from fer_perception.nodes.messages import expression_event, face_expression, face_frame, stamp_to_ns
from fer_perception.nodes.log_throttle import CauseThrottle
from fer_perception.nodes.parameters import Param, declare_parameters
from fer_perception.nodes.qos import QOS_OVERRIDES, SENSOR_QOS, reliable
from fer_perception.nodes.runtime import node_main
from fer_perception.report import FACE_COLUMNS, face_line, face_row
from fer_perception.types import FaceFrame

PARAMS = [
    Param("out_dir", "out", "Folder for annotated.mp4 and faces.csv (created if missing).", read_only=True),
    Param("video_fps", 30.0, "Frame rate written into annotated.mp4.", min=1.0, max=240.0, read_only=True),
    Param("print_interval", 1.0, "Seconds between console lines for the same face.", min=0.0, max=60.0),
    Param("frame_buffer", 60, "Camera frames kept while waiting for their results.", min=1, max=1000,
          read_only=True),
    Param("show", "auto", "Play the annotated frames in a window: auto (where a display is present), always "
          "(a warning where none can open), never; q or closing it stops the run.", choices=SHOW_CHOICES,
          read_only=True),
    *DIAGNOSTICS_PARAMS,
]
NO_RESULTS = "no results in time"  # why a frame was dropped: frame_buffer newer frames came before its results


class MonitorNode(Node):
    """Pairs camera frames with face results by stamp, then prints, draws and records them."""

    def __init__(self, node_name: str = "monitor", **kwargs):
        super().__init__(node_name, **kwargs)
        self.bad_frame_warnings = CauseThrottle()
        self.config = declare_parameters(self, PARAMS)
        self.out_dir = Path(self.config["out_dir"])
        self.frames: deque[tuple[int, np.ndarray]] = deque(maxlen=self.config["frame_buffer"])
        self.faces: deque[Faces] = deque(maxlen=self.config["frame_buffer"])
        self.writer: cv2.VideoWriter | None = None
        self.video_size: tuple[int, int] | None = None
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.csv_file = open(self.out_dir / "faces.csv", "w", newline="")
        except OSError as error:
            raise OSError(f"cannot write to out_dir {self.out_dir}: {error.strerror or error}") from error
        self.csv = csv.DictWriter(self.csv_file, fieldnames=FACE_COLUMNS)
        self.csv.writeheader()
        self.last_printed: dict[str, int] = {}
        self.frames_written = 0
        self.rows_written = 0
        self.face_frames = 0
        self.source = self.resolve_topic_name("image")
        self.diagnostics = NodeDiagnostics(self, "monitor")
        self.diagnostics.create_publisher()
        self.diagnostics.start(self.source, f"OpenCV {cv2.__version__} mp4v")
        self.create_subscription(Image, "image", self.on_image, SENSOR_QOS, qos_overriding_options=QOS_OVERRIDES)
        self.create_subscription(Faces, "faces", self.on_faces, reliable(10), qos_overriding_options=QOS_OVERRIDES)
        self.create_subscription(Expressions, "expressions", self.on_expressions, reliable(10),
                                 qos_overriding_options=QOS_OVERRIDES)
        self.events = EventTicker()
        self.create_subscription(Events, "events", self.on_events, reliable(100),
                                 qos_overriding_options=QOS_OVERRIDES)
        self.get_logger().info(f"writing {self.out_dir}/annotated.mp4 and {self.out_dir}/faces.csv")
        self.stop_requested = threading.Event()
        self.window, reason = open_window(self.config["show"], self.on_window_closed, self.on_window_failed)
        if reason is not None:
            log = self.get_logger().warning if self.config["show"] == "always" else self.get_logger().info
            log(f"{reason}: console lines and files only")
        elif self.window is not None:
            self.get_logger().info("showing the annotated frames in a window: q or closing it stops the run")

    def on_image(self, msg: Image) -> None:
        self.diagnostics.stats.received()
        try:
            image = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
        except ImageDecodeError as error:
            self.diagnostics.stats.dropped(error.cause)
            if self.bad_frame_warnings.due(error.cause):
                self.get_logger().warning(f"skipping frame: {error}{self.bad_frame_warnings.note(error.cause)}")
            return
        if len(self.frames) == self.frames.maxlen:
            self.diagnostics.stats.dropped(NO_RESULTS)
        self.frames.append((stamp_to_ns(msg.header.stamp), image))

    def on_faces(self, msg: Faces) -> None:
        self.faces.append(msg)

    def on_events(self, msg: Events) -> None:
        self.events.add(stamp_to_ns(msg.header.stamp), [expression_event(e) for e in msg.events])

    def on_window_closed(self) -> None:
        self.get_logger().info("window closed: stopping")
        self.stop_requested.set()

    def on_window_failed(self, reason: str) -> None:
        self.get_logger().warning(f"{reason}; going on with console lines and files only")

    def on_expressions(self, msg: Expressions) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        expressions = {e.face_id: face_expression(e) for e in msg.expressions}
        annotations: dict[int, tuple[FaceFrame, dict[str, FaceExpression]]] = {}
        while self.faces and stamp_to_ns(self.faces[0].header.stamp) <= stamp:
            frame = face_frame(self.faces.popleft())
            annotations[frame.stamp_ns] = (frame, expressions if frame.stamp_ns == stamp else {})
            self.record(*annotations[frame.stamp_ns])
        while self.frames and self.frames[0][0] <= stamp:
            started = time.monotonic()
            stamp_ns, image = self.frames.popleft()
            if stamp_ns in annotations:
                frame, frame_expressions = annotations[stamp_ns]
                draw_faces(image, frame.faces, frame_expressions)
            self.events.draw(image, stamp_ns)
            self.write_video(image)
            if self.window is not None:
                self.window.show(image)
            self.diagnostics.stats.processed(time.monotonic() - started)

    def record(self, frame: FaceFrame, expressions: dict[str, FaceExpression]) -> None:
        time_s = frame.stamp_ns * 1e-9
        interval_ns = int(self.get_parameter("print_interval").value * 1e9)
        for face in frame.faces:
            expression = expressions.get(face.track_id)
            self.csv.writerow(face_row(self.source, self.face_frames, time_s, face, expression))
            self.rows_written += 1
            last = self.last_printed.get(face.track_id)
            if expression is not None and (last is None or frame.stamp_ns - last >= interval_ns):
                print(face_line(time_s, face, expression), flush=True)
                self.last_printed[face.track_id] = frame.stamp_ns
        for track_id in frame.lost:
            self.last_printed.pop(track_id, None)
        self.face_frames += 1
        self.diagnostics.stats.faces = len(frame.faces)

    def write_video(self, image: np.ndarray) -> None:
        """Append a frame; a frame of another size than the first (the camera changed resolution) is scaled
        and padded to it, since a video file has one size and its writer silently drops the others."""
        height, width = image.shape[:2]
        if self.writer is None:
            self.video_size = (width, height)
            self.writer = cv2.VideoWriter(str(self.out_dir / "annotated.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                          self.config["video_fps"], self.video_size)
        if (width, height) != self.video_size:
            if self.bad_frame_warnings.due("frame size"):
                self.get_logger().warning(f"frames of {width}x{height} scaled to the video's "
                                          f"{self.video_size[0]}x{self.video_size[1]}")
            image = letterbox(image, *self.video_size)
        self.writer.write(image)
        self.frames_written += 1

    def destroy_node(self) -> None:
        if getattr(self, "window", None) is not None:
            self.window.close()
        if self.writer is not None:
            self.writer.release()
            video = f"{self.frames_written} frames to {self.out_dir}/annotated.mp4"
        else:
            video = f"no frames (no {self.out_dir}/annotated.mp4)"
        if getattr(self, "csv_file", None) is not None:
            self.csv_file.close()
            self.get_logger().info(f"wrote {video} and {self.rows_written} rows to {self.out_dir}/faces.csv")
        super().destroy_node()


main = node_main(MonitorNode)

if __name__ == "__main__":
    main()
