"""monitor_node: shows what the graph sees, as a person watching the robot would want it.

It prints one line per face (at most every ``print_interval`` seconds) and
writes ``out_dir/annotated.mp4`` (the camera frames with faces, ids, labels
and AU bars drawn on) and ``out_dir/faces.csv`` (one row per face per frame,
the columns of ``fer-analyze``'s ``frames.csv``; ``source`` is the image topic
and ``frame`` counts the faces messages).
Frames are written when their expressions arrive (faces, then expressions,
matched by stamp); frames the expression stage skipped are written with
faces only. Files are closed when the node is destroyed, also on Ctrl-C. It
is a consumer like any other: the perception graph does not depend on it.
"""
from __future__ import annotations

import csv
from collections import deque
from pathlib import Path

import cv2
import numpy as np
from fer_msgs.msg import Expressions, Faces
from rclpy.node import Node
from sensor_msgs.msg import Image

from fer_perception.annotate import draw_faces, letterbox
from fer_perception.image_codec import ImageDecodeError, decode_image
from fer_perception.expression_pipeline import FaceExpression
from fer_perception.nodes.messages import face_expression, face_frame, stamp_to_ns
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
]


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
        self.create_subscription(Image, "image", self.on_image, SENSOR_QOS, qos_overriding_options=QOS_OVERRIDES)
        self.create_subscription(Faces, "faces", self.on_faces, reliable(10), qos_overriding_options=QOS_OVERRIDES)
        self.create_subscription(Expressions, "expressions", self.on_expressions, reliable(10),
                                 qos_overriding_options=QOS_OVERRIDES)
        self.get_logger().info(f"writing {self.out_dir}/annotated.mp4 and {self.out_dir}/faces.csv")

    def on_image(self, msg: Image) -> None:
        try:
            image = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
        except ImageDecodeError as error:
            if self.bad_frame_warnings.due(error.cause):
                self.get_logger().warning(f"skipping frame: {error}{self.bad_frame_warnings.note(error.cause)}")
            return
        self.frames.append((stamp_to_ns(msg.header.stamp), image))

    def on_faces(self, msg: Faces) -> None:
        self.faces.append(msg)

    def on_expressions(self, msg: Expressions) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        expressions = {e.face_id: face_expression(e) for e in msg.expressions}
        annotations: dict[int, tuple[FaceFrame, dict[str, FaceExpression]]] = {}
        while self.faces and stamp_to_ns(self.faces[0].header.stamp) <= stamp:
            frame = face_frame(self.faces.popleft())
            annotations[frame.stamp_ns] = (frame, expressions if frame.stamp_ns == stamp else {})
            self.record(*annotations[frame.stamp_ns])
        while self.frames and self.frames[0][0] <= stamp:
            stamp_ns, image = self.frames.popleft()
            if stamp_ns in annotations:
                frame, frame_expressions = annotations[stamp_ns]
                draw_faces(image, frame.faces, frame_expressions)
            self.write_video(image)

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
