"""Clearly expressive real faces, held before the camera, read right within a second through the whole graph's
core: FER+ test faces on which at least 7 of the 10 taggers agree, enlarged into a 640x480 frame and fed as a
30 fps video to the analyser (face front end, AUs, learned classifier fused with the FACS mapping, smoothing),
the same core the live graph runs. Sadness is the case the emotion issue names (a crying face read as neutral,
happy and disgust for its first two seconds); neutral faces are the control that must not read sad."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import data_dir
from fer_perception.emotion.dataset import default_ferplus_path
from fer_perception.offline.analysis import AnalysisChoices, Analyzer
from fer_perception.offline.inputs import InputFrame
from fer_perception.types import EMOTION_LABELS

FPS = 30
FACES = 10          # faces per class that the front end finds
AGREEING = 7        # of the 10 FER+ taggers
BLANK_FRAMES = 15   # between two faces: more than the front end's max_misses, so each face is a new track
WAIT_FRAMES = 15    # frames a face is shown before it is given up: the detector runs every 10 frames
FACE_PX = 240       # the 48 px face enlarged; the front end's detector needs context around FER2013's tight crops


def frame_of(face: np.ndarray) -> np.ndarray:
    """A 640x480 BGR frame with the face enlarged in its middle, its edges continued around it."""
    image = cv2.resize(face, (FACE_PX, FACE_PX), interpolation=cv2.INTER_CUBIC)
    pad = FACE_PX // 2
    image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    canvas = np.full((480, 640), 128, np.uint8)
    side = image.shape[0]
    top, left = (480 - side) // 2, (640 - side) // 2
    canvas[max(top, 0):top + side, left:left + side] = image[max(-top, 0):max(-top, 0) + min(side, 480)]
    return cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)


def clear_faces(ferplus_column: str) -> np.ndarray:
    fer_path, votes_path = data_dir() / "fer2013" / "fer2013.npz", default_ferplus_path()
    for path in (fer_path, votes_path):
        if not path.is_file():
            pytest.fail(f"test data missing: {path} (set FER_DATA_DIR to the shared data folder)")
    with np.load(fer_path) as data, np.load(votes_path) as ferplus:
        column = [str(c) for c in ferplus["columns"]].index(ferplus_column)
        test = [str(s) for s in data["split_names"]].index("test")
        chosen = (data["split"] == test) & (ferplus["votes"][:, column] >= AGREEING)
        return data["images"][chosen]


def smoothed_labels_after_one_second(faces: np.ndarray, emotion_model: str | None) -> list[str]:
    """Each face held in one video, blank frames between faces: the smoothed label one second after the face
    was first reported, for the first :data:`FACES` faces the front end reports."""
    analyzer = Analyzer.from_config(warn=lambda message: None, choices=AnalysisChoices(emotion_model=emotion_model))
    blank = np.full((480, 640, 3), 128, np.uint8)
    frame_index, labels = 0, []

    def show(image: np.ndarray) -> list:
        nonlocal frame_index
        analysed = analyzer.process(InputFrame(image, frame_index, frame_index * 1_000_000_000 // FPS, "held",
                                               "camera"))
        frame_index += 1
        return analysed.result.expressions

    try:
        for face in faces:
            if len(labels) == FACES:
                break
            frame = frame_of(face)
            reported = [bool(show(frame)) for _ in range(WAIT_FRAMES)]
            if any(reported):
                shown_since_report = WAIT_FRAMES - reported.index(True)
                expressions = [show(frame) for _ in range(FPS + 1 - shown_since_report)][-1]
                if expressions:
                    labels.append(EMOTION_LABELS[expressions[0].label_smoothed])
            for _ in range(BLANK_FRAMES):
                show(blank)
    finally:
        analyzer.close()
    assert len(labels) == FACES, f"the front end found only {len(labels)} of the faces"
    return labels


MODELS = [None, "ferplus"]
"""The configured default and the model trained on the FER+ votes."""


@pytest.mark.parametrize("emotion_model", MODELS)
def test_clearly_sad_faces_read_sad_within_a_second(emotion_model):
    labels = smoothed_labels_after_one_second(clear_faces("sadness"), emotion_model)
    assert labels.count("sad") >= 8, labels


@pytest.mark.parametrize("emotion_model", MODELS)
def test_clearly_neutral_faces_do_not_read_sad(emotion_model):
    labels = smoothed_labels_after_one_second(clear_faces("neutral"), emotion_model)
    assert labels.count("neutral") >= 8 and labels.count("sad") <= 1, labels
