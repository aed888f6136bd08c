"""The face front end: image in, confirmed faces with mesh, pose, quality and crop transform out.

Per-frame schedule, designed so the separate detector runs only when it can
add something:

1. Follow: every confirmed track seen in the previous frame gets its mesh
   fitted (tracking-mode FaceMesh, 3-4 ms) in a region cut around its
   constant-velocity prediction. The mesh is the measurement; a fit that
   fails, fails the tracker's gate, or duplicates another track's face is
   discarded.
2. Detect (full frame, 5-7 ms) only when due: every ``detect_interval``
   frames to pick up new faces, and on any frame where some track is
   tentative, coasting, or just lost its mesh. A detection overlapping a
   followed face only refreshes its confidence; each remaining one must be
   confirmed by a mesh fitted in its region (static FaceMesh, about 5.5 ms),
   which also rejects the detector's false faces before they reach the tracker.
3. Track: followed meshes update their own tracks directly; verified
   detections are associated to the other tracks or start new ones.
4. Describe each confirmed, visible face: box (mesh extent, clipped to the
   image), the confidence of its latest detection, head pose, the
   eye-aligned crop transform and quality. The crop itself is cut only on
   request via :meth:`FaceFrontEnd.crop`.

Measured at 640 x 480 on 2 cores (``bench.stages``; median per frame, crops
included): one face 4.9-5.3 ms, 1.4-1.5 times the MediaPipe calls inside it,
the rest mostly cutting the mesh region (0.4 ms) and the crop's area-averaging
of a large face (0.4 ms); five faces 21-22 ms, 1.23 times. Mesh costs above
are per face and include cutting regions and reading landmarks.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from fer_perception.face.alignment import BORDER_MODES, alignment_transform, warp_crop
from fer_perception.face.detector import check_detector_name, create_detector
from fer_perception.face.head_pose import estimate_head_pose
from fer_perception.face.mesh import FaceMeshFitter
from fer_perception.face.mesh_points import landmarks_box
from fer_perception.face.quality import assess_quality, sharpness_ratio
from fer_perception.face.tracker import FaceTracker, Observation, Track
from fer_perception.types import BoundingBox, FaceFrame, TrackedFace


@dataclass(frozen=True)
class FaceFrontEndConfig:
    """Tunable settings of :class:`FaceFrontEnd`; construction validates every field."""

    detector: str = "mediapipe_full_range"
    """Registered detector backend (see ``detector_names()``)."""
    max_faces: int = 5
    """Most faces tracked at once; the best-scored detections win."""
    min_detection_confidence: float = 0.5
    """Detector score below which a face is ignored."""
    min_mesh_confidence: float = 0.5
    """FaceMesh detection and tracking confidence inside a face region."""
    min_hits: int = 3
    """Consecutive frames a new face must be seen before it is confirmed and reported."""
    max_misses: int = 10
    """Frames a confirmed face may go unseen before its track is reported lost."""
    detect_interval: int = 10
    """Run the detector at least every this many frames (1 = every frame); also the longest a new face
    waits to be noticed while every other track is followed, or while there is none."""
    iou_threshold: float = 0.3
    """Association gate: a prediction and an observation match if their IoU reaches this..."""
    max_centre_distance: float = 0.5
    """...or their eye (or box centre) distance, over face size, is within this."""
    same_face_iou: float = 0.5
    """Boxes overlapping at least this much are taken to show the same face."""
    region_scale: float = 2.0
    """Side of the square region the mesh is fitted in, as a multiple of the face box's longer side."""
    region_size: int = 256
    """Pixels the mesh region is resampled to (the landmark model itself runs at 192)."""
    crop_size: int = 112
    """Side of the aligned face crop in pixels."""
    crop_border: str = "constant"
    """How crops reaching past the image border are filled: 'constant' (black) or 'replicate'."""
    deterministic_ids: bool = False
    """Ids 'f0', 'f1', ... in order of confirmation, without the random run tag of live ids ('f0-k7q')."""
    full_quality_face_px: float = 96.0
    """Face box height at and above which size no longer lowers the quality score."""
    sharpness_reference: float = 0.1
    """Sharpness ratio that maps to a sharpness factor of 0.5."""

    def __post_init__(self) -> None:
        check_detector_name(self.detector)
        _require(self.max_faces >= 1, "max_faces", self.max_faces, "must be at least 1")
        for name in ("min_detection_confidence", "min_mesh_confidence"):
            value = getattr(self, name)
            _require(0.0 <= value <= 1.0, name, value, "must be within [0, 1]")
        _require(self.min_hits >= 1, "min_hits", self.min_hits, "must be at least 1")
        _require(self.max_misses >= 0, "max_misses", self.max_misses, "must not be negative")
        _require(self.detect_interval >= 1, "detect_interval", self.detect_interval, "must be at least 1")
        for name in ("iou_threshold", "same_face_iou"):
            value = getattr(self, name)
            _require(0.0 < value <= 1.0, name, value, "must be within (0, 1]")
        _require(self.max_centre_distance >= 0.0, "max_centre_distance", self.max_centre_distance,
                 "must not be negative")
        _require(self.region_scale >= 1.0, "region_scale", self.region_scale,
                 "must be at least 1 so the region contains the face")
        _require(self.region_size >= 64, "region_size", self.region_size, "must be at least 64 pixels")
        _require(self.crop_size >= 16, "crop_size", self.crop_size, "must be at least 16 pixels")
        _require(self.crop_border in BORDER_MODES, "crop_border", self.crop_border,
                 f"must be one of {', '.join(sorted(BORDER_MODES))}")
        _require(self.full_quality_face_px > 0.0, "full_quality_face_px", self.full_quality_face_px,
                 "must be positive")
        _require(self.sharpness_reference > 0.0, "sharpness_reference", self.sharpness_reference,
                 "must be positive")


def _require(condition: bool, name: str, value: object, reason: str) -> None:
    if not condition:
        raise ValueError(f"FaceFrontEndConfig.{name}={value!r} {reason}")


class FaceFrontEnd:
    """Finds, tracks and describes faces in a stream of RGB frames (see the module docstring)."""

    def __init__(self, config: FaceFrontEndConfig | None = None) -> None:
        self.config = config or FaceFrontEndConfig()
        cfg = self.config
        self._detector = create_detector(cfg.detector, cfg.min_detection_confidence)
        self._mesh = FaceMeshFitter(pool_size=cfg.max_faces, region_scale=cfg.region_scale,
                                    region_size=cfg.region_size, min_confidence=cfg.min_mesh_confidence)
        self._tracker = FaceTracker(min_hits=cfg.min_hits, max_misses=cfg.max_misses,
                                    iou_threshold=cfg.iou_threshold, max_centre_distance=cfg.max_centre_distance,
                                    max_tracks=cfg.max_faces, deterministic_ids=cfg.deterministic_ids)
        self._frames_since_detection = cfg.detect_interval

    def process(self, image_rgb: np.ndarray, stamp_ns: int) -> FaceFrame:
        """Faces confirmed and visible in this H x W x 3 uint8 RGB frame, plus the tracks that ended."""
        image = _checked_image(image_rgb)
        followed = self._follow(image)
        detections: list[Observation] = []
        if self._detection_due(followed):
            detections = self._detect(image, followed)
            self._frames_since_detection = 0
        self._frames_since_detection += 1
        update = self._tracker.update(detections, assigned=followed)
        for track in update.lost:
            self._mesh.release(track.key)
        height, width = image.shape[:2]
        return FaceFrame(stamp_ns=stamp_ns, image_width=width, image_height=height,
                         faces=[self._describe(image, track) for track in update.visible],
                         lost=[track.track_id for track in update.lost])

    def crop(self, image_rgb: np.ndarray, face: TrackedFace) -> np.ndarray:
        """The eye-aligned ``crop_size`` square RGB crop of ``face`` from the frame it was found in."""
        if face.crop_transform is None:
            raise ValueError(f"face {face.track_id} has no crop transform")
        return warp_crop(_checked_image(image_rgb), face.crop_transform, self.config.crop_size,
                         self.config.crop_border)

    def close(self) -> None:
        """Release the MediaPipe graphs."""
        self._detector.close()
        self._mesh.close()

    def _follow(self, image: np.ndarray) -> dict[int, Observation]:
        """Mesh measurements for confirmed tracks seen last frame, keyed by track."""
        candidates: list[tuple[float, Track, Observation]] = []
        for track in self._tracker.tracks:
            if not track.confirmed or track.misses:
                continue
            predicted = track.predicted_box()
            landmarks = self._mesh.follow(track.key, image, predicted)
            if landmarks is None:
                continue
            observation = Observation(box=landmarks_box(landmarks), score=track.score, landmarks=landmarks)
            if self._tracker.can_match(track, observation):
                candidates.append((predicted.iou(observation.box), track, observation))
            else:
                self._mesh.forget(track.key)
        # Two meshes on one face (faces crossing): the one closer to its own prediction keeps it.
        followed: dict[int, Observation] = {}
        for _, track, observation in sorted(candidates, key=lambda c: c[0], reverse=True):
            if self._overlaps(observation.box, followed.values()):
                self._mesh.forget(track.key)
            else:
                followed[track.key] = observation
        return followed

    def _detection_due(self, followed: dict[int, Observation]) -> bool:
        if self._frames_since_detection >= self.config.detect_interval:
            return True
        return any(track.key not in followed for track in self._tracker.tracks)

    def _detect(self, image: np.ndarray, followed: dict[int, Observation]) -> list[Observation]:
        """Faces the detector finds that are not followed yet, each confirmed and measured by a mesh.

        A detection of a followed face only refreshes that face's confidence.
        """
        verified = []
        for detection in self._detector.detect(image)[: self.config.max_faces]:
            same = [key for key, observation in followed.items()
                    if detection.box.iou(observation.box) >= self.config.same_face_iou]
            if same:
                followed[same[0]] = replace(followed[same[0]], score=detection.score)
                continue
            landmarks = self._mesh.fit(image, detection.box)
            if landmarks is None:
                continue
            box = landmarks_box(landmarks)
            if box.iou(detection.box) < self.config.same_face_iou:
                continue  # the mesh settled on a neighbouring face
            verified.append(Observation(box=box, score=detection.score, landmarks=landmarks,
                                        keypoints=detection.keypoints))
        return verified

    def _overlaps(self, box: BoundingBox, others: Iterable[Observation]) -> bool:
        return any(box.iou(other.box) >= self.config.same_face_iou for other in others)

    def _describe(self, image: np.ndarray, track: Track) -> TrackedFace:
        cfg = self.config
        observation = track.observation
        landmarks = observation.landmarks
        transform = alignment_transform(observation.eyes, cfg.crop_size)
        head_pose = estimate_head_pose(landmarks)
        box = _clipped(observation.box, image.shape[1], image.shape[0])
        quality = assess_quality(box.height, observation.score, head_pose,
                                 sharpness_ratio(image, transform, cfg.crop_size),
                                 cfg.full_quality_face_px, cfg.sharpness_reference)
        return TrackedFace(track_id=track.track_id, box=box, detection_confidence=observation.score,
                           landmarks=landmarks, head_pose=head_pose, quality=quality, crop_transform=transform)


def _checked_image(image_rgb: np.ndarray) -> np.ndarray:
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 RGB image, got shape {image_rgb.shape} {image_rgb.dtype}")
    if image_rgb.shape[0] < 1 or image_rgb.shape[1] < 1:
        raise ValueError(f"image is empty: shape {image_rgb.shape}")
    return np.ascontiguousarray(image_rgb)


def _clipped(box: BoundingBox, width: int, height: int) -> BoundingBox:
    """``box`` intersected with the image."""
    x0, y0 = max(box.x, 0.0), max(box.y, 0.0)
    x1, y1 = min(box.x + box.width, float(width)), min(box.y + box.height, float(height))
    return BoundingBox(x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0))
