"""Head yaw, pitch and roll from the face mesh.

The mesh's x/y/z (weak perspective, z on the x scale) are matched to MediaPipe's
canonical face model by a least-squares similarity fit (Umeyama), so no camera
intrinsics are needed and the angles describe the head relative to the line of
sight, which is what decides how the face looks. Only rigid points are used
(eye corners, nose ridge, forehead, cheek contour); mouth and chin move with
expressions.

Sign conventions (``HeadPose``; "left"/"right" are the subject's own sides):

* yaw > 0: the subject turns to their left, the nose moves to the image's right;
* pitch > 0: the subject looks up, the nose moves up in the image;
* roll > 0: the head tilts towards the subject's right shoulder, i.e. the face
  turns counter-clockwise in the image as displayed.

A frontal, upright face gives about (0, 0, 0); mirroring the image negates yaw
and roll.
"""
from __future__ import annotations

import math

import numpy as np

from fer_perception.types import HeadPose

# Canonical face model vertices (cm; x towards the subject's left, y up, z out
# of the face), from mediapipe/modules/face_geometry/data/canonical_face_model.obj.
_CANONICAL_POINTS: dict[int, tuple[float, float, float]] = {
    1: (0.0, -1.126865, 7.475604),        # nose tip
    4: (0.0, -0.463170, 7.586580),
    6: (0.0, 2.473255, 5.788627),         # nose bridge
    9: (0.0, 4.885979, 5.385258),
    10: (0.0, 8.261778, 4.481535),        # top of forehead
    33: (-4.445859, 2.663991, 3.173422),  # right eye, outer corner
    133: (-1.856432, 2.585245, 3.757904),  # right eye, inner corner
    151: (0.0, 6.545390, 5.027311),
    168: (0.0, 3.271027, 5.236015),
    195: (0.0, 1.059413, 6.774605),
    197: (0.0, 1.728369, 6.316750),
    234: (-7.664182, 0.673132, -2.435867),  # right cheek contour
    263: (4.445859, 2.663991, 3.173422),  # left eye, outer corner
    362: (1.856432, 2.585245, 3.757904),  # left eye, inner corner
    454: (7.664182, 0.673132, -2.435867),  # left cheek contour
}
_INDICES = list(_CANONICAL_POINTS)
_MODEL = np.array(list(_CANONICAL_POINTS.values()))
_MODEL_CENTRED_T = np.ascontiguousarray((_MODEL - _MODEL.mean(axis=0)).T)
"""The model points about their centroid, transposed: since they sum to zero, multiplying by them
centres the observed points too, so the fit needs no separate centring step."""
# Mesh axes (x right, y down, z away from the camera) to the model's (x right, y up, z towards the camera).
_MESH_TO_MODEL_AXES = np.array([1.0, -1.0, -1.0])


def head_rotation(landmarks: np.ndarray) -> np.ndarray:
    """3 x 3 rotation taking canonical-model directions to camera directions (x right, y up, z to camera)."""
    covariance = (_MODEL_CENTRED_T @ landmarks[_INDICES]) * _MESH_TO_MODEL_AXES
    u, _, vt = np.linalg.svd(covariance)
    rotation = vt.T @ u.T
    if np.linalg.det(rotation) < 0.0:  # the best orthogonal fit is a reflection: flip its weakest axis
        rotation -= 2.0 * np.outer(vt[2], u[:, 2])
    return rotation


def estimate_head_pose(landmarks: np.ndarray) -> HeadPose:
    """Yaw, pitch, roll in degrees from 478 x 3 mesh landmarks (pixels).

    The rotation is decomposed as R = R_y(yaw) · R_x(-pitch) · R_z(roll).
    """
    (_, _, r02), (r10, r11, r12), (_, _, r22) = head_rotation(landmarks).tolist()
    return HeadPose(yaw=math.degrees(math.atan2(r02, r22)), pitch=math.degrees(math.asin(min(max(r12, -1.0), 1.0))),
                    roll=math.degrees(math.atan2(r10, r11)))
