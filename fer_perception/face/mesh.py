"""Fits MediaPipe's 478-point face mesh (iris-refined) inside a region around each face.

FaceMesh run on a whole frame finds faces with its own short-range detector,
which found only 1 of the 5 faces in the test group photo; fitting it inside a
padded square region around each detected or tracked face finds all of them.

Two ways of fitting, measured on 256 px regions on 2 CPU cores (MediaPipe
call alone / whole call including cutting the region and reading landmarks):

* ``fit`` runs a static-image FaceMesh: its in-region detector and the
  landmark model on every call, 5.1 / 5.5-6 ms per face. Used to verify and
  measure a fresh detection, which has no earlier landmarks.
* ``follow`` runs a tracking-mode FaceMesh owned by one track: it derives
  the landmark-model input from the previous frame's landmarks and skips the
  detector, 2.6-3.3 / 3-3.8 ms per face, so this cheaper path is the one
  used on every tracked frame. Because each region is cut around the track's
  predicted box, the face stays near the region's centre from frame to
  frame, which is what the instance's own frame-to-frame tracking assumes.

Tracking-mode instances cost about 30 ms to start, so one per allowed face is
started up front and pooled; an instance whose state no longer belongs to its
track is cleared by feeding it a blank region (2.5 ms).

Of what a call adds to MediaPipe's own time, most is cutting the region: a
whole-pixel square around the face resized to 256 x 256 (a warp, with the
same pixel mapping, only where the square reaches past the image border); the
landmarks are read from the serialised protobuf (:func:`landmark_array`)
rather than field by field.
"""
from __future__ import annotations

import cv2
import mediapipe as mp
import numpy as np
from mediapipe.framework.formats import landmark_pb2

from fer_perception.types import BoundingBox


class FaceMeshFitter:
    """Maps a face box to full-image mesh landmarks (478 x 3, x/y/z in pixels)."""

    def __init__(self, *, pool_size: int, region_scale: float, region_size: int, min_confidence: float) -> None:
        self._region_scale = region_scale
        self._region_size = region_size
        self._min_confidence = min_confidence
        self._blank = np.zeros((region_size, region_size, 3), np.uint8)
        self._static = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True,
            min_detection_confidence=min_confidence)
        self._free = [self._new_tracking_mesh() for _ in range(pool_size)]
        self._owned: dict[int, mp.solutions.face_mesh.FaceMesh] = {}
        self._engaged: set[int] = set()

    def fit(self, image_rgb: np.ndarray, box: BoundingBox) -> np.ndarray | None:
        """Landmarks of the face in ``box`` from scratch, or None when no face is there."""
        return self._run(self._static, image_rgb, box)

    def follow(self, key: int, image_rgb: np.ndarray, box: BoundingBox) -> np.ndarray | None:
        """Landmarks of track ``key``'s face near ``box``, continuing that track's mesh tracking."""
        if key not in self._owned:
            self._owned[key] = self._free.pop() if self._free else self._new_tracking_mesh()
        landmarks = self._run(self._owned[key], image_rgb, box)
        if landmarks is None:
            # A failed fit leaves MediaPipe searching afresh on the next call.
            self._engaged.discard(key)
        else:
            self._engaged.add(key)
        return landmarks

    def forget(self, key: int) -> None:
        """Drop track ``key``'s tracking state after its last fit was rejected."""
        if key in self._engaged:
            self._owned[key].process(self._blank)
            self._engaged.discard(key)

    def release(self, key: int) -> None:
        """Track ``key`` ended: return its instance to the pool."""
        if key in self._owned:
            self.forget(key)
            self._free.append(self._owned.pop(key))

    def close(self) -> None:
        for mesh in [self._static, *self._free, *self._owned.values()]:
            mesh.close()
        self._free.clear()
        self._owned.clear()
        self._engaged.clear()

    def _new_tracking_mesh(self) -> mp.solutions.face_mesh.FaceMesh:
        mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=1, refine_landmarks=True,
            min_detection_confidence=self._min_confidence, min_tracking_confidence=self._min_confidence)
        mesh.process(self._blank)  # start the graph now rather than on a live frame
        return mesh

    def _run(self, mesh: mp.solutions.face_mesh.FaceMesh, image_rgb: np.ndarray,
             box: BoundingBox) -> np.ndarray | None:
        side = max(1, round(self._region_scale * max(box.width, box.height)))
        left = round(box.x + box.width / 2 - side / 2)
        top = round(box.y + box.height / 2 - side / 2)
        result = mesh.process(self._region(image_rgb, left, top, side))
        if not result.multi_face_landmarks:
            return None
        # Normalised region coordinates (z on the x scale) to image pixels.
        landmarks = landmark_array(result.multi_face_landmarks[0])
        landmarks *= side
        landmarks += (left, top, 0.0)
        return landmarks

    def _region(self, image_rgb: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
        """The ``side`` square at (``left``, ``top``) resampled to ``region_size``, black outside the image.

        Inside the image this is a plain resize of the slice (a quarter of a warp's cost); a square
        reaching past the border is warped with the same pixel mapping.
        """
        size = self._region_size
        height, width = image_rgb.shape[:2]
        if left >= 0 and top >= 0 and left + side <= width and top + side <= height:
            return cv2.resize(image_rgb[top:top + side, left:left + side], (size, size),
                              interpolation=cv2.INTER_LINEAR)
        scale = size / side
        to_region = np.array([[scale, 0.0, scale * (0.5 - left) - 0.5], [0.0, scale, scale * (0.5 - top) - 0.5]])
        return cv2.warpAffine(image_rgb, to_region, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)


_RECORD_BYTES = 17
"""Size of one serialised landmark that has only x, y and z set..."""
_RECORD_KEYS = ((0, 0x0A), (1, 0x0F), (2, 0x0D), (7, 0x15), (12, 0x1D))
"""...and its protobuf key bytes by offset: the landmark (field 1, length 15), then x, y and z (float
fields 1-3), each followed by its 4-byte little-endian float."""


def landmark_array(landmark_list: landmark_pb2.NormalizedLandmarkList) -> np.ndarray:
    """(N, 3) float64 x/y/z of a landmark list, exactly the values its fields hold.

    Reading 478 landmarks field by field costs about 0.3 ms in Python. MediaPipe's face mesh sets
    only x, y and z, so the serialised list is a run of fixed 17-byte records whose floats numpy
    reads through a strided view in about 15 us; a list laid out any other way (visibility or
    presence set) is read field by field.
    """
    raw = landmark_list.SerializeToString()
    count = len(landmark_list.landmark)
    if count and len(raw) == count * _RECORD_BYTES and all(
            raw[offset::_RECORD_BYTES] == bytes((key,)) * count for offset, key in _RECORD_KEYS):
        floats = np.ndarray((count, 3), "<f4", raw, offset=3, strides=(_RECORD_BYTES, 5))
        return floats.astype(np.float64)
    return np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float64).reshape(count, 3)
