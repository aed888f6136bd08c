"""Mapping the face front end's eye-aligned crops to the emotion model's FER2013-framed input.

The model was trained on FER2013 faces as they are: 48 x 48 grayscale, with
the eyes (measured by running :class:`fer_perception.face.front_end.FaceFrontEnd`
on 202 upscaled training faces; median, interquartile range in brackets)
centred horizontally (0.50 [0.48, 0.51] of the side), on a row at
:data:`FER_EYE_ROW_FRACTION` = 0.398 [0.374, 0.415] of the height, and
:data:`FER_EYE_DISTANCE_FRACTION` = 0.347 [0.309, 0.375] of the side apart.
The live crops (``fer_perception.face.alignment``) frame the face looser: eyes
0.30 of the side apart at 0.40 of the height. So a live crop is mapped by

1. converting RGB to gray (``cv2.COLOR_RGB2GRAY``, ITU-R 601 luma);
2. cutting the square window in which the eyes sit where FER2013 has them:
   side ``0.30 / 0.347 = 0.865`` of the crop side, horizontally centred, top
   at ``0.40 * crop - 0.398 * side`` (for the default 112-pixel crop: side 97,
   left 8, top 6, rounded to whole pixels, i.e. under 0.3 model pixels off);
3. resizing that window to 48 x 48 with area averaging.

Training uses FER2013's images unchanged; its random rotation, scale and shift
(``dataset.Augmentation``'s ranges, +-15 deg, 0.85-1.15, +-10 %, scaled by
``fer-train --augment-strength``; the shipped model's card gives the values it
used) cover the spread of FER2013's own framing (the interquartile ranges
above) and so the residual differences from step 2.
"""
from __future__ import annotations

import cv2
import numpy as np

from fer_perception.face.alignment import EYE_DISTANCE_FRACTION, EYE_ROW_FRACTION

FER_EYE_DISTANCE_FRACTION = 0.347
"""Median distance between the eye centres in FER2013 faces, as a fraction of the image side."""
FER_EYE_ROW_FRACTION = 0.398
"""Median height of the eye line in FER2013 faces from the top, as a fraction of the image side."""


def fer_window(crop_size: int) -> tuple[int, int, int]:
    """``(left, top, side)`` in pixels of the window of an aligned ``crop_size`` crop framed like FER2013."""
    side = EYE_DISTANCE_FRACTION / FER_EYE_DISTANCE_FRACTION * crop_size
    left = (crop_size - side) / 2.0
    top = EYE_ROW_FRACTION * crop_size - FER_EYE_ROW_FRACTION * side
    return round(left), round(top), round(side)


def crop_to_model_input(crop: np.ndarray, input_size: int = 48) -> np.ndarray:
    """uint8 ``input_size`` square gray model input of an aligned square crop (H x W x 3 RGB or H x W gray uint8)."""
    if crop.ndim not in (2, 3) or crop.shape[0] != crop.shape[1] or (crop.ndim == 3 and crop.shape[2] != 3):
        raise ValueError(f"expected a square RGB (S, S, 3) or gray (S, S) crop, got shape {crop.shape}")
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    left, top, side = fer_window(crop.shape[0])
    window = gray[top:top + side, left:left + side]  # inside the crop: top and left are > 5 % of its side
    return cv2.resize(window, (input_size, input_size), interpolation=cv2.INTER_AREA)
