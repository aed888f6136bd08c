"""How usable a face is for expression analysis, as one score in [0, 1].

Four factors, each in [0, 1], combined by geometric mean so that any one of
them near zero (a tiny, blurred, unconfident or profile face) pulls the score
down no matter how good the others are:

* size: face box height over the height that already carries full detail;
* detection confidence, as reported by the detector;
* frontality: cos(yaw) · cos(pitch), 1 for a face looking into the camera;
* sharpness: variance of the Laplacian of a small grey patch of the face,
  divided by the patch's intensity variance so contrast and lighting cancel,
  mapped to [0, 1] by r / (r + reference). The patch is the square the
  aligned crop covers (same centre and side) but axis-aligned, brought to
  ``SHARPNESS_PATCH_PX`` across, so the face is seen at the same scale as in
  the eye-aligned patch this used to warp out (the Laplacian is isotropic, so
  the in-plane rotation does not matter) for about a quarter of the cost. A
  large face is first area-averaged by a whole factor, which OpenCV does
  several times faster than by a fractional one, and the remaining reduction
  of less than 2x is bilinear, which still draws on every source pixel. The
  factor reads as before on the test photo (0.77 sharp, 0.31 blurred with
  sigma 5) and a little higher where the old warp's resampling softened the
  patch (0.71-0.74 instead of 0.63-0.68 on the test clip), so
  ``sharpness_reference`` keeps its meaning. The image border clips the
  patch rather than padding it.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from fer_perception.types import FaceQuality, HeadPose

SHARPNESS_PATCH_PX = 64
"""Side of the patch sharpness is measured on, so the measure does not depend on crop_size."""


def sharpness_ratio(image_rgb: np.ndarray, crop_transform: np.ndarray, crop_size: int) -> float:
    """Laplacian variance over intensity variance of the face, seen at ``SHARPNESS_PATCH_PX``.

    ``crop_transform`` is the similarity transform to the ``crop_size`` aligned crop (see
    :func:`fer_perception.face.alignment.alignment_transform`); the patch covers the same square.
    """
    grey = _face_patch(image_rgb, crop_transform, crop_size)
    if grey is None:
        return 0.0
    intensity_variance = float(cv2.meanStdDev(grey)[1][0, 0]) ** 2
    if intensity_variance < 1e-6:
        return 0.0
    # 16-bit output holds the 3 x 3 Laplacian of 8-bit pixels exactly and is cheaper than float.
    return float(cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S))[1][0, 0]) ** 2 / intensity_variance


def _face_patch(image_rgb: np.ndarray, crop_transform: np.ndarray, crop_size: int) -> np.ndarray | None:
    """The grey, axis-aligned sharpness patch (see the module docstring); None when under 3 pixels."""
    linear, offset = crop_transform[:, :2], crop_transform[:, 2]
    scale_sq = float(linear[0, 0] ** 2 + linear[0, 1] ** 2)
    centre_x, centre_y = (linear.T @ (crop_size / 2.0 - offset) / scale_sq).tolist()
    half = crop_size / (2.0 * math.sqrt(scale_sq))
    factor = SHARPNESS_PATCH_PX / (2.0 * half)
    step = max(1, int(1.0 / factor))
    height, width = image_rgb.shape[:2]
    x0, y0 = max(round(centre_x - half), 0), max(round(centre_y - half), 0)
    columns = (min(round(centre_x + half), width) - x0) // step
    rows = (min(round(centre_y + half), height) - y0) // step
    size = (round(columns * step * factor), round(rows * step * factor))
    if min(size) < 3:
        return None
    patch = image_rgb[y0:y0 + rows * step, x0:x0 + columns * step]
    if step > 1:  # averaging before the (linear) grey conversion: the same grey, on step^2 fewer pixels
        patch = cv2.resize(patch, (columns, rows), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_LINEAR)


def assess_quality(face_height_px: float, detection_confidence: float, head_pose: HeadPose,
                   sharpness: float, full_quality_face_px: float, sharpness_reference: float) -> FaceQuality:
    """Combine the four factors; ``sharpness`` is a :func:`sharpness_ratio`."""
    size_factor = min(1.0, face_height_px / full_quality_face_px)
    confidence = min(max(float(detection_confidence), 0.0), 1.0)
    frontality = max(0.0, math.cos(math.radians(head_pose.yaw)) * math.cos(math.radians(head_pose.pitch)))
    sharpness_factor = sharpness / (sharpness + sharpness_reference)
    score = (size_factor * confidence * frontality * sharpness_factor) ** 0.25
    return FaceQuality(size_px=face_height_px, detection_confidence=confidence, frontality=frontality,
                       sharpness=sharpness_factor, score=score)
