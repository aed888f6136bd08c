"""Writing real rosbag2 bags of real frames with the rosbags library, as a recorder would."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_perception.offline.bags import add_connection, open_writer, typestore

BAG_START_NS = 1_763_700_000_000_000_000  # an epoch stamp, as a live camera gives
NS = 1_000_000_000


def video_frames(path: Path) -> tuple[list[np.ndarray], float]:
    """Every BGR frame of a video and its frame rate."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


def image_message(frame: np.ndarray, stamp_ns: int, frame_id: str, compressed: bool):
    """A rosbags ``sensor_msgs/Image`` (bgr8) or ``CompressedImage`` (jpeg) of ``frame``."""
    store = typestore()
    Header, Time = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    header = Header(stamp=Time(sec=stamp_ns // NS, nanosec=stamp_ns % NS), frame_id=frame_id)
    if compressed:
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        return store.types["sensor_msgs/msg/CompressedImage"](header=header, format="jpeg", data=jpeg.ravel())
    height, width = frame.shape[:2]
    return store.types["sensor_msgs/msg/Image"](header=header, height=height, width=width, encoding="bgr8",
                                                is_bigendian=0, step=width * 3,
                                                data=np.ascontiguousarray(frame).ravel())


def write_image_bag(path: Path, frames: list[np.ndarray], fps: float, compressed: bool = False,
                    topics: tuple[str, ...] = ("/camera/image_raw",), frame_id: str = "test_camera") -> list[int]:
    """A bag (``path``: name.mcap or name.db3) with ``frames`` on each of ``topics``; returns the stamps.

    Each message's header stamp and recording time is ``BAG_START_NS`` plus the frame's media time.
    """
    store = typestore()
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    writer = open_writer(path)
    connections = [add_connection(writer, topic, msgtype) for topic in topics]
    stamps = []
    for index, frame in enumerate(frames):
        stamp_ns = BAG_START_NS + round(index * NS / fps)
        data = store.serialize_cdr(image_message(frame, stamp_ns, frame_id, compressed), msgtype)
        for connection in connections:
            writer.write(connection, stamp_ns, data)
        stamps.append(stamp_ns)
    writer.close()
    return stamps
