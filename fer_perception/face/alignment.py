"""Eye-aligned square face crops for the expression models.

A similarity transform (rotation, one scale, translation) puts the eyes level,
a fixed distance apart and at a fixed height in the crop, so every face reaches
the classifier at the same pose and scale and is never stretched. The eyes come
from the mesh when there is one, otherwise from the detector's keypoints (see
:attr:`fer_perception.face.tracker.Observation.eyes`).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

EYE_DISTANCE_FRACTION = 0.30
"""Distance between the eye centres as a fraction of the crop side."""
EYE_ROW_FRACTION = 0.40
"""Height of the eye line from the top as a fraction of the crop side; leaves room for brows and chin."""

BORDER_MODES = {"constant": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}
"""How pixels outside the image are filled when a crop reaches past the border."""


def alignment_transform(eyes: np.ndarray, crop_size: int) -> np.ndarray:
    """2 x 3 affine map from image pixels to a ``crop_size`` square crop.

    ``eyes`` is (2, 2): the subject's right eye then left eye, image x/y.
    """
    (right_x, right_y), (left_x, left_y) = np.asarray(eyes, dtype=np.float64).tolist()
    dx, dy = left_x - right_x, left_y - right_y
    distance = math.hypot(dx, dy)
    if distance <= 0.0:
        raise ValueError("eye centres coincide; cannot align")
    scale = EYE_DISTANCE_FRACTION * crop_size / distance
    cos, sin = scale * (dx / distance), scale * (dy / distance)  # scaled rotation entries
    mid_x, mid_y = (right_x + left_x) / 2.0, (right_y + left_y) / 2.0
    return np.array([[cos, sin, crop_size / 2.0 - (cos * mid_x + sin * mid_y)],
                     [-sin, cos, EYE_ROW_FRACTION * crop_size - (cos * mid_y - sin * mid_x)]])


def warp_crop(image_rgb: np.ndarray, transform: np.ndarray, crop_size: int, border: str = "constant") -> np.ndarray:
    """Apply ``transform`` to cut a ``crop_size`` square (same dtype/channels as the image).

    When the crop shrinks the face by more than 2x, the part of the image it
    covers is area-averaged down first, so large faces do not alias.
    """
    transform = np.asarray(transform, dtype=np.float64)
    (a, b), (c, d) = transform[:, :2].tolist()
    scale = math.sqrt(abs(a * d - b * c))
    if scale < 0.5:
        image_rgb, transform = _area_reduced(image_rgb, transform, crop_size, scale)
    return cv2.warpAffine(image_rgb, transform, (crop_size, crop_size), flags=cv2.INTER_LINEAR,
                          borderMode=BORDER_MODES[border], borderValue=0)


def _area_reduced(image_rgb: np.ndarray, transform: np.ndarray, crop_size: int,
                  scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The image region under the crop area-averaged by a whole factor, and the transform from it to the crop.

    The factor is the largest whole number that leaves the crop's remaining scale at or below 1 (so
    over 0.5): OpenCV's area resize is about 20 times faster for whole factors than for fractional ones.
    """
    factor = max(2, int(1.0 / scale))
    (a, b, c), (d, e, f) = cv2.invertAffineTransform(transform).tolist()
    xs = (c, a * crop_size + c, b * crop_size + c, a * crop_size + b * crop_size + c)
    ys = (f, d * crop_size + f, e * crop_size + f, d * crop_size + e * crop_size + f)
    height, width = image_rgb.shape[:2]
    x0, y0 = min(max(math.floor(min(xs)) - 1, 0), width), min(max(math.floor(min(ys)) - 1, 0), height)
    x1, y1 = min(max(math.ceil(max(xs)) + 1, 0), width), min(max(math.ceil(max(ys)) + 1, 0), height)
    x1 = _whole_multiple_end(x0, x1, factor, width)
    y1 = _whole_multiple_end(y0, y1, factor, height)
    if x1 - x0 < 2 * factor or y1 - y0 < 2 * factor:
        return image_rgb, transform
    reduced = cv2.resize(image_rgb[y0:y1, x0:x1], ((x1 - x0) // factor, (y1 - y0) // factor),
                         interpolation=cv2.INTER_AREA)
    # Pixel centres: reduced index q maps to image index x0 + (q + 0.5) * factor - 0.5.
    from_reduced = np.array([[factor, 0.0, x0 + 0.5 * factor - 0.5],
                             [0.0, factor, y0 + 0.5 * factor - 0.5],
                             [0.0, 0.0, 1.0]])
    return reduced, transform @ from_reduced


def _whole_multiple_end(start: int, end: int, factor: int, limit: int) -> int:
    """``end`` moved so that ``end - start`` is a multiple of ``factor``: out to cover it, or in at ``limit``."""
    covering = start + -(-(end - start) // factor) * factor
    return covering if covering <= limit else start + (limit - start) // factor * factor
