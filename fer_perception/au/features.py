"""Pose- and proportion-corrected geometric features of the face mesh, the raw material of the AU estimates.

The 478-point mesh (x/y in pixels, z on the x scale) is rotated back to a
frontal view with the head rotation fitted on rigid points
(:func:`fer_perception.face.head_pose.head_rotation`), centred on the eye
midpoint and scaled so that the distance between the eye centres is 1 ("IOD
units"), with x towards the person's left, y up and z towards the camera.
Vertical distances are then rescaled by the face's own rigid height (the nose
from its bridge to its tip, :data:`REFERENCE_NOSE_HEIGHT` for the average face): faces are
longer or shorter relative to their eye distance (a person's build, a
camera's lens, a dataset's cropping), and on real video that difference alone
read as raised brows and a lowered chin. Head rotation, face size and face
proportions therefore do not change the features. ``docs/action_units.md``
explains each feature and the AUs it serves.
"""
from __future__ import annotations

import numpy as np

from fer_perception.face.head_pose import head_rotation
from fer_perception.face.mesh_points import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS

# Mesh points, "right"/"left" being the person's own sides.
RIGHT_INNER_BROW, LEFT_INNER_BROW = (107, 66, 55, 65), (336, 296, 285, 295)
RIGHT_MID_BROW, LEFT_MID_BROW = (105, 52), (334, 282)
RIGHT_OUTER_BROW, LEFT_OUTER_BROW = (70, 63, 46, 53), (300, 293, 276, 283)
RIGHT_BROW_END, LEFT_BROW_END = (107, 55), (336, 285)
RIGHT_UPPER_LID, LEFT_UPPER_LID = (159, 158, 160), (386, 385, 387)
RIGHT_LOWER_LID, LEFT_LOWER_LID = (145, 144, 153), (374, 380, 373)
RIGHT_IRIS, LEFT_IRIS = 468, 473
RIGHT_CHEEK, LEFT_CHEEK = (50, 101, 118), (280, 330, 347)
NASION = 168
ALAR = (98, 327, 129, 358)
SUBNASALE = 2
RIGHT_UPPER_LIP_SIDE, LEFT_UPPER_LIP_SIDE = (37, 39), (267, 269)
UPPER_LIP_TOP, UPPER_LIP_INNER, LOWER_LIP_INNER, LOWER_LIP_BOTTOM = 0, 13, 14, 17
RIGHT_MOUTH_CORNER, LEFT_MOUTH_CORNER = 61, 291
NOSE_TIP, CHIN = 1, 152

NOSE_BRIDGE = 6
REFERENCE_NOSE_HEIGHT = 0.540
"""Nose bridge (point 6) to nose tip (IOD units) of the average face: the median over FER2013's neutral
training faces. The nose ridge is the most rigid vertical length of the mesh: the eye corners rise with the
cheeks in a smile (eye line to nose tip shrank 7 % from neutral to a broad smile on the shared clip, the
ridge 2 %), and AU9/AU10 pull the nose base up."""

FEATURE_NAMES = (
    "inner_brow_height",   # inner brow above the inner eye corners
    "mid_brow_height",     # middle of the brow above the eye line
    "outer_brow_height",   # outer brow above the eye line
    "brow_gap",            # horizontal distance between the inner brow ends
    "eye_opening_right",   # upper to lower lid, right eye
    "eye_opening_left",
    "upper_lid_to_iris",   # upper lid above the iris centre (both eyes)
    "cheek_height",        # cheek points relative to the eye line
    "nose_length",         # nasion down to the nose wings
    "philtrum_length",     # nose base down to the top of the upper lip
    "upper_lip_side_drop", # nose base down to the sides of the upper lip
    "mouth_corner_height", # mouth corners relative to the lip midline
    "mouth_width",         # corner to corner
    "mouth_corner_depth",  # mouth corners towards the camera relative to the lip midline
    "chin_height",         # lower lip down to the chin
    "lower_lip_raise",     # lower lip centre relative to the mouth corners
    "lip_gap",             # inner lips apart
    "mouth_aspect",        # outer mouth height over mouth width
    "jaw_length",          # nose tip down to the chin
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}

# Mesh axes (x right, y down, z away from the camera) to the frontal frame's (x right, y up, z to camera).
_MESH_TO_FRAME_AXES = np.array([1.0, -1.0, -1.0])
_EYE_CORNER_POINTS = [*RIGHT_EYE_CORNERS, *LEFT_EYE_CORNERS]


def frontalized(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The mesh in the frontal frame (head rotation removed, eye-centre distance 1, eye midpoint at 0,
    vertical proportions of the average face), and the eye-centre distance in pixels."""
    points = landmarks[:, :3] * _MESH_TO_FRAME_AXES
    points = points @ head_rotation(landmarks)  # row vectors: p @ R == (R^T p^T)^T
    eyes = points[_EYE_CORNER_POINTS].reshape(2, 2, 3).mean(axis=1)
    centre = eyes.mean(axis=0)
    distance = max(float(np.linalg.norm(eyes[1] - eyes[0])), 1e-9)
    points = (points - centre) / distance
    nose_height = float(points[NOSE_BRIDGE, 1] - points[NOSE_TIP, 1])
    points[:, 1] *= REFERENCE_NOSE_HEIGHT / max(nose_height, 1e-6)
    return points, distance


def _mean_y(points: np.ndarray, indices) -> float:
    return float(points[list(indices), 1].mean())


def _both_y(points: np.ndarray, right, left) -> float:
    return (_mean_y(points, right) + _mean_y(points, left)) / 2


def compute_features(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """``FEATURE_NAMES`` values (IOD units) for one 478 x 3 mesh, and the eye-centre distance in pixels."""
    p, eye_distance_px = frontalized(landmarks)
    y = p[:, 1]
    r_inner, r_outer = RIGHT_EYE_CORNERS[1], RIGHT_EYE_CORNERS[0]
    l_inner, l_outer = LEFT_EYE_CORNERS[0], LEFT_EYE_CORNERS[1]
    eye_line = y[[r_inner, r_outer, l_inner, l_outer]].mean()
    lip_mid = p[[UPPER_LIP_TOP, LOWER_LIP_BOTTOM]].mean(axis=0)
    corners = p[[RIGHT_MOUTH_CORNER, LEFT_MOUTH_CORNER]]
    mouth_width = float(corners[1, 0] - corners[0, 0])
    return np.array([
        (_mean_y(p, RIGHT_INNER_BROW) - y[r_inner] + _mean_y(p, LEFT_INNER_BROW) - y[l_inner]) / 2,
        _both_y(p, RIGHT_MID_BROW, LEFT_MID_BROW) - eye_line,
        _both_y(p, RIGHT_OUTER_BROW, LEFT_OUTER_BROW) - eye_line,
        float(p[list(LEFT_BROW_END), 0].mean() - p[list(RIGHT_BROW_END), 0].mean()),
        _mean_y(p, RIGHT_UPPER_LID) - _mean_y(p, RIGHT_LOWER_LID),
        _mean_y(p, LEFT_UPPER_LID) - _mean_y(p, LEFT_LOWER_LID),
        (_mean_y(p, RIGHT_UPPER_LID) - y[RIGHT_IRIS] + _mean_y(p, LEFT_UPPER_LID) - y[LEFT_IRIS]) / 2,
        _both_y(p, RIGHT_CHEEK, LEFT_CHEEK) - eye_line,
        y[NASION] - _mean_y(p, ALAR),
        y[SUBNASALE] - y[UPPER_LIP_TOP],
        y[SUBNASALE] - _both_y(p, RIGHT_UPPER_LIP_SIDE, LEFT_UPPER_LIP_SIDE),
        float(corners[:, 1].mean() - lip_mid[1]),
        mouth_width,
        float(corners[:, 2].mean() - lip_mid[2]),
        y[LOWER_LIP_BOTTOM] - y[CHIN],
        y[LOWER_LIP_BOTTOM] - float(corners[:, 1].mean()),
        y[UPPER_LIP_INNER] - y[LOWER_LIP_INNER],
        (y[UPPER_LIP_TOP] - y[LOWER_LIP_BOTTOM]) / max(mouth_width, 1e-6),
        y[NOSE_TIP] - y[CHIN],
    ]), eye_distance_px
