"""How usable a face is for expression analysis, as one score in [0, 1].

Four factors, each in [0, 1], combined by geometric mean so that any one of
them near zero (a tiny, blurred, unconfident or profile face) pulls the score
down no matter how good the others are:

* size: face box height over the height that already carries full detail;
* detection confidence, as reported by the detector;
* frontality: cos(yaw) · cos(pitch), 1 for a face looking into the camera;
* sharpness: variance of the Laplacian of a small grey eye-aligned patch,
  divided by the patch's intensity variance so contrast and lighting cancel,
  mapped to [0, 1] by r / (r + reference).
"""
from __future__ import annotations

import cv2
import numpy as np

from fer_perception.face.alignment import warp_crop
from fer_perception.types import FaceQuality, HeadPose

SHARPNESS_PATCH_PX = 64
"""Side of the aligned patch sharpness is measured on, so the measure does not depend on crop_size."""


def sharpness_ratio(image_rgb: np.ndarray, crop_transform: np.ndarray, crop_size: int) -> float:
    """Laplacian variance over intensity variance of the face, seen at ``SHARPNESS_PATCH_PX``."""
    patch_transform = crop_transform * (SHARPNESS_PATCH_PX / crop_size)
    patch = warp_crop(image_rgb, patch_transform, SHARPNESS_PATCH_PX, border="replicate")
    grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
    intensity_variance = float(grey.var())
    if intensity_variance < 1e-6:
        return 0.0
    return float(cv2.Laplacian(grey, cv2.CV_32F).var()) / intensity_variance


def assess_quality(face_height_px: float, detection_confidence: float, head_pose: HeadPose,
                   sharpness: float, full_quality_face_px: float, sharpness_reference: float) -> FaceQuality:
    """Combine the four factors; ``sharpness`` is a :func:`sharpness_ratio`."""
    size_factor = min(1.0, face_height_px / full_quality_face_px)
    confidence = float(np.clip(detection_confidence, 0.0, 1.0))
    frontality = max(0.0, float(np.cos(np.radians(head_pose.yaw)) * np.cos(np.radians(head_pose.pitch))))
    sharpness_factor = sharpness / (sharpness + sharpness_reference)
    score = float((size_factor * confidence * frontality * sharpness_factor) ** 0.25)
    return FaceQuality(size_px=face_height_px, detection_confidence=confidence, frontality=frontality,
                       sharpness=sharpness_factor, score=score)
