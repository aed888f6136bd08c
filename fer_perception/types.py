"""Typed data classes shared by every stage of the ROS-free core.

They are the vocabulary between the face front end, the expression stages,
the ROS nodes and the offline tools: nodes translate these to and from
``fer_msgs`` and nothing else, so every consumer sees the same values.
Coordinates are in pixels of the source image unless a name says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class BoundingBox:
    """Axis-aligned box in pixels: top-left corner, width and height."""

    x: float
    y: float
    width: float
    height: float

    def normalized(self, image_width: int, image_height: int) -> "BoundingBox":
        """The same box in [0, 1] image coordinates."""
        return BoundingBox(self.x / image_width, self.y / image_height,
                           self.width / image_width, self.height / image_height)

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def iou(self, other: "BoundingBox") -> float:
        """Intersection over union with another box (0 when disjoint)."""
        ix = max(0.0, min(self.x + self.width, other.x + other.width) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.height, other.y + other.height) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees: yaw (+ = the person turns to their left), pitch (+ = looks up),
    roll (+ = head tilts towards the person's right shoulder, counter-clockwise in the image)."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0


@dataclass(frozen=True)
class FaceQuality:
    """How usable a face is for expression analysis; ``score`` in [0, 1] weights frames."""

    size_px: float = 0.0
    detection_confidence: float = 0.0
    frontality: float = 0.0
    sharpness: float = 0.0
    score: float = 0.0


@dataclass
class TrackedFace:
    """A confirmed face track as seen in one frame.

    ``landmarks`` holds the MediaPipe face mesh (478 × 3, x/y in pixels, z in
    pixels relative to the face centre) or is ``None`` when no mesh was fitted.
    ``crop_transform`` is the 2 × 3 affine map from image pixels to the
    aligned crop, so consumers can project crop coordinates back.
    """

    track_id: str
    box: BoundingBox
    detection_confidence: float
    landmarks: np.ndarray | None = None
    head_pose: HeadPose = field(default_factory=HeadPose)
    quality: FaceQuality = field(default_factory=FaceQuality)
    crop_transform: np.ndarray | None = None


@dataclass
class FaceFrame:
    """The face front end's result for one frame.

    ``faces`` are the confirmed tracks visible in this frame; ``lost`` names the
    tracks that ended with this frame, so later stages can close their state.
    """

    stamp_ns: int
    image_width: int
    image_height: int
    faces: list[TrackedFace] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


AU_NUMBERS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 10, 12, 14, 15, 17, 20, 25, 26, 43)
"""FACS numbers of the estimated action units, in the order of every AU array."""


@dataclass
class ActionUnits:
    """AU intensities (FACS 0-5) and eye closure of one face in one frame.

    Arrays follow ``AU_NUMBERS``. An AU whose ``estimated`` flag is False was
    not measured in this frame (head turned too far, face too small) and its
    intensity must be ignored, not read as 0. Eye closure is 0 (open) to 1
    (closed) per eye, the person's own left and right. ``calibration`` says how
    far the intensities are read against the person's own neutral face rather
    than the population's: 0 for the prior alone (a still image, a face just
    seen), rising as confident neutral frames accumulate, 1 once a neutral
    face was captured explicitly.
    """

    intensity: np.ndarray
    estimated: np.ndarray
    confidence: np.ndarray
    left_eye_closure: float = 0.0
    right_eye_closure: float = 0.0
    eyes_estimated: bool = False
    calibration: float = 0.0

    def value(self, au: int) -> float | None:
        """Intensity of AU ``au`` (a FACS number), or None when not estimated."""
        index = AU_NUMBERS.index(au)
        return float(self.intensity[index]) if self.estimated[index] else None


EMOTION_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""Emotion classes in the order of every probability array (FER2013's order)."""


class EventPhase:
    """Phases of an :class:`ExpressionEvent` (the values of ``fer_msgs/Event``)."""

    ONSET = 0
    OFFSET = 1
    INSTANT = 2


@dataclass(frozen=True)
class ExpressionEvent:
    """An event of one face: an episode's onset or offset, or a momentary event.

    Onset and offset of one episode share ``event_id``. Stamps are source-image
    stamps in nanoseconds; at onset ``end_ns`` is 0 and ``duration_s`` 0.
    """

    event_id: int
    face_id: str
    kind: str
    phase: int
    detail: str
    start_ns: int
    end_ns: int
    duration_s: float
    peak: float
    mean: float
