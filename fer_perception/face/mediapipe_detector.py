"""MediaPipe BlazeFace detector backends (the models ship inside the mediapipe wheel).

Detection resolution: MediaPipe letterboxes the whole frame, keeping its aspect
ratio, into the model input, 192 x 192 for the full-range model and 128 x 128
for the short-range model, so the cost barely depends on frame size (measured
7.0 ms at 1000 x 667 and 7.6 ms at 1920 x 1280 for full range). A face must
cover roughly 10 model pixels to be found, i.e. about 5 % of the frame's longer
side at full range. Full range suits a room-scale camera; short range (faces
within about 2 m) is about 3x cheaper but found only 3 of the 5 faces in the
test group photo.
"""
from __future__ import annotations

import mediapipe as mp
import numpy as np

from fer_perception.face.detector import Detection, FaceDetector, register_detector
from fer_perception.types import BoundingBox


class MediaPipeFaceDetector:
    """Adapter from ``mediapipe.solutions.face_detection`` to :class:`FaceDetector`."""

    def __init__(self, model_selection: int, min_confidence: float) -> None:
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=min_confidence)

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        height, width = image_rgb.shape[:2]
        result = self._detector.process(image_rgb)
        detections = []
        for found in result.detections or ():
            location = found.location_data
            rel = location.relative_bounding_box
            box = BoundingBox(rel.xmin * width, rel.ymin * height, rel.width * width, rel.height * height)
            keypoints = np.array([(k.x * width, k.y * height) for k in location.relative_keypoints], dtype=np.float64)
            detections.append(Detection(box=box, score=float(found.score[0]), keypoints=keypoints))
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections

    def close(self) -> None:
        self._detector.close()


@register_detector("mediapipe_full_range")
def full_range(min_confidence: float) -> FaceDetector:
    """BlazeFace full-range model (faces up to about 5 m)."""
    return MediaPipeFaceDetector(1, min_confidence)


@register_detector("mediapipe_short_range")
def short_range(min_confidence: float) -> FaceDetector:
    """BlazeFace short-range model (faces within about 2 m)."""
    return MediaPipeFaceDetector(0, min_confidence)
