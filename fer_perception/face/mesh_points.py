"""Named points of MediaPipe's 478-point face mesh and geometry read off them.

Several stages (alignment, tracking, head pose) need the same few landmarks;
keeping their indices here means the mesh topology is written down once.
"Right"/"left" are the subject's own sides: for a person facing the camera
their right eye appears on the image's left.
"""
from __future__ import annotations

import numpy as np

from fer_perception.types import BoundingBox

RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)
_EYE_CORNERS = [*RIGHT_EYE_CORNERS, *LEFT_EYE_CORNERS]


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2) image x/y of the right then the left eye, each the midpoint of its corners.

    Corners rather than iris centres, so gaze does not move the result.
    """
    corners = landmarks[_EYE_CORNERS, :2]
    return (corners[0::2] + corners[1::2]) / 2.0


def landmarks_box(landmarks: np.ndarray) -> BoundingBox:
    """Tight axis-aligned box around all mesh points."""
    # Column by column: numpy reduces a strided (N, 2) view along axis 0 several times slower.
    xs, ys = landmarks[:, 0], landmarks[:, 1]
    left, top = float(xs.min()), float(ys.min())
    return BoundingBox(left, top, float(xs.max()) - left, float(ys.max()) - top)
