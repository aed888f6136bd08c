"""Face detector interface and the registry that picks a backend by name.

The front end only needs boxes, scores and six keypoints, so any detector that
yields those can stand in for MediaPipe: write a class satisfying
:class:`FaceDetector` in one module, decorate its factory with
``@register_detector("name")`` and import that module from
``fer_perception/face/__init__.py``.

Detection runs on the whole frame at the backend's own input resolution: the
built-in MediaPipe backends (``mediapipe_detector``) letterbox the frame into
192 x 192 (full range) or 128 x 128 (short range), whatever its size.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fer_perception.types import BoundingBox

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear_tragion", "left_ear_tragion")
"""Order of :attr:`Detection.keypoints`; right/left are the subject's own sides."""


@dataclass(frozen=True, eq=False)
class Detection:
    """One face found by a detector, in pixels of the image it was given."""

    box: BoundingBox
    score: float
    keypoints: np.ndarray
    """(6, 2) x/y pixels in :data:`KEYPOINT_NAMES` order."""


class FaceDetector(Protocol):
    """What the front end needs from a detector backend."""

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Faces in an H x W x 3 uint8 RGB image, best score first."""
        ...

    def close(self) -> None:
        """Release the backend's resources."""
        ...


DetectorFactory = Callable[[float], FaceDetector]
"""Builds a detector from its minimum detection confidence."""

_REGISTRY: dict[str, DetectorFactory] = {}


def register_detector(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Decorator that makes a detector factory selectable by ``name``."""

    def add(factory: DetectorFactory) -> DetectorFactory:
        if name in _REGISTRY:
            raise ValueError(f"face detector {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return add


def detector_names() -> tuple[str, ...]:
    """Names accepted by :func:`create_detector`, sorted."""
    return tuple(sorted(_REGISTRY))


def check_detector_name(name: str) -> None:
    """Raise ValueError naming the choices when ``name`` is not a registered backend."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown face detector {name!r}; choose one of: {', '.join(detector_names())}")


def create_detector(name: str, min_confidence: float) -> FaceDetector:
    """Instantiate the backend registered as ``name``."""
    check_detector_name(name)
    return _REGISTRY[name](min_confidence)
