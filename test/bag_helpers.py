"""Writing real rosbag2 bags of real frames with the rosbags library, as a recorder would."""
from __future__ import annotations

from collections.abc import Callable
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


def bayer_rggb8(frame: np.ndarray) -> np.ndarray:
    """The RGGB Bayer mosaic a raw colour sensor gives for the BGR ``frame``: one byte per pixel."""
    mosaic = frame[:, :, 1].copy()  # green, then red and blue at their sites
    mosaic[0::2, 0::2] = frame[0::2, 0::2, 2]
    mosaic[1::2, 1::2] = frame[1::2, 1::2, 0]
    return mosaic


RAW_ENCODINGS = {"bgr8": lambda frame: frame, "bayer_rggb8": bayer_rggb8}  # what image_message can write


def image_message(frame: np.ndarray, stamp_ns: int, frame_id: str, compressed: bool, encoding: str = "bgr8"):
    """A rosbags ``sensor_msgs/Image`` (``encoding``: one of :data:`RAW_ENCODINGS`) or ``CompressedImage``
    (jpeg) of ``frame``."""
    store = typestore()
    Header, Time = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    header = Header(stamp=Time(sec=stamp_ns // NS, nanosec=stamp_ns % NS), frame_id=frame_id)
    if compressed:
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        return store.types["sensor_msgs/msg/CompressedImage"](header=header, format="jpeg", data=jpeg.ravel())
    pixels = np.ascontiguousarray(RAW_ENCODINGS[encoding](frame))
    height, width = pixels.shape[:2]
    return store.types["sensor_msgs/msg/Image"](header=header, height=height, width=width, encoding=encoding,
                                                is_bigendian=0, step=pixels.strides[0], data=pixels.ravel())


def write_image_bag(path: Path, frames: list[np.ndarray], fps: float, compressed: bool = False,
                    topics: tuple[str, ...] = ("/camera/image_raw",), frame_id: str = "test_camera",
                    encoding: str = "bgr8", header_stamps: list[int] | None = None,
                    damage: Callable[[object], object] | None = None) -> list[int]:
    """A bag (``path``: name.mcap or name.db3) with ``frames`` on each of ``topics``; returns the header stamps.

    Each message's recording time is ``BAG_START_NS`` plus the frame's media time; so is its header stamp,
    unless ``header_stamps`` gives them (a camera whose clock is reset while the recorder's runs on).
    ``damage`` turns each message into the one written, as a faulty driver would send it (a wrong ``step``).
    """
    store = typestore()
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    writer = open_writer(path)
    connections = [add_connection(writer, topic, msgtype) for topic in topics]
    stamps = []
    for index, frame in enumerate(frames):
        recorded_ns = BAG_START_NS + round(index * NS / fps)
        stamp_ns = header_stamps[index] if header_stamps is not None else recorded_ns
        message = image_message(frame, stamp_ns, frame_id, compressed, encoding)
        data = store.serialize_cdr(damage(message) if damage else message, msgtype)
        for connection in connections:
            writer.write(connection, recorded_ns, data)
        stamps.append(stamp_ns)
    writer.close()
    return stamps
