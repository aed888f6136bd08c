"""The benchmark's input frames, made from the real media in ``$FER_DATA_DIR/media``."""
from __future__ import annotations

import cv2
import numpy as np

from fer_perception.annotate import letterbox
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig
from fer_perception.paths import data_dir
from fer_perception.types import FaceFrame

FRAME_NS = 33_333_333  # stamps of 30 fps frames


def media(name: str):
    path = data_dir() / "media" / name
    if not path.is_file():
        raise SystemExit(f"benchmark data missing: {path} (set FER_DATA_DIR)")
    return path


def video_frames(name: str) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(media(name)))
    frames = []
    while (result := capture.read())[0]:
        frames.append(result[1])
    return frames


def one_face_640x480() -> list[np.ndarray]:
    """The single-face clip, letterboxed to 640x480 (BGR)."""
    return [letterbox(f, 640, 480) for f in video_frames("single_face.mp4")]


def five_faces_640x480(count: int) -> list[np.ndarray]:
    """The five-person photo at 640x480, shifted by a few pixels per frame so that every frame differs."""
    photo = letterbox(cv2.imread(str(media("multi_face.jpg"))), 640, 480)
    return [np.roll(photo, (i % 7) - 3, axis=1) for i in range(count)]


def tracked_faces(frames_bgr: list[np.ndarray]) -> list[tuple[FaceFrame, list[np.ndarray]]]:
    """Each frame's faces (reported from the first frame they are found in) and their aligned RGB crops."""
    front_end = FaceFrontEnd(FaceFrontEndConfig(min_hits=1))
    results = []
    for index, frame in enumerate(frames_bgr):
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        faces = front_end.process(rgb, index * FRAME_NS)
        results.append((faces, [front_end.crop(rgb, face) for face in faces.faces]))
    front_end.close()
    return results
