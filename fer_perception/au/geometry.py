"""The default AU estimator: mesh geometry against the person's own neutral face, no weights needed.

For each AU a weighted sum of feature changes from the person's baseline
(:mod:`fer_perception.au.features`, :mod:`fer_perception.au.calibration`) is
mapped linearly to the FACS 0-5 scale between an ``onset`` (intensity
``trace``, 0.25 by default) and a ``full`` change (intensity 5), capped at 5.
Below the onset the intensity decays smoothly towards 0 instead of being cut
off at it: every reading there stays below ``trace`` (absent, well under
FACS's trace level A), yet weaker evidence still reads lower, so the
intensities rank faces by the evidence over the whole range rather than
tying every sub-threshold face at 0. Weights, onsets and full-scale
values live in ``config/action_units.yaml``; ``fer-au-fit`` fits the prior
baseline and the scales on FER2013's training split. Eye closure compares
each eye's opening with the person's open-eye baseline; AU43 follows from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from fer_perception.au.calibration import CalibrationConfig, PersonBaseline
from fer_perception.au.features import FEATURE_INDEX, FEATURE_NAMES, compute_features
from fer_perception.types import AU_NUMBERS, ActionUnits, HeadPose

AU43_INDEX = AU_NUMBERS.index(43)
EYE_OPENING = (FEATURE_INDEX["eye_opening_left"], FEATURE_INDEX["eye_opening_right"])


@dataclass(frozen=True)
class AUScale:
    """How one AU is read off the features: weighted feature changes, mapped to 0-5."""

    au: int
    weights: np.ndarray  # one weight per feature; the sign says which direction activates the AU
    onset: float         # combined change (IOD units) at which the intensity starts above 0
    full: float          # combined change giving intensity 5
    max_yaw: float       # degrees; beyond this the AU is not estimated
    max_pitch: float
    trace: float         # intensity at the onset; below it the intensity decays towards 0

    def intensity(self, change: np.ndarray) -> float:
        position = (float(self.weights @ change) - self.onset) / (self.full - self.onset)
        if position < 0.0:
            # Continuous and rising at the onset: the slope there matches the linear part's.
            return self.trace * float(np.exp(position * (5.0 - self.trace) / self.trace))
        return min(self.trace + (5.0 - self.trace) * position, 5.0)


@dataclass(frozen=True)
class GeometryConfig:
    """Everything the geometric estimator reads from ``config/action_units.yaml``."""

    scales: tuple[AUScale, ...]
    prior: np.ndarray
    spread: np.ndarray   # inter-quartile range of each feature over neutral faces: how far people differ at rest
    calibration: CalibrationConfig
    min_eye_distance_px: float
    full_confidence_eye_distance_px: float
    eye_closed_opening: float
    eye_max_yaw: float
    eye_max_pitch: float
    au43_onset: float

    @classmethod
    def from_yaml(cls, path: Path) -> "GeometryConfig":
        data = yaml.safe_load(Path(path).read_text())["geometry"]
        missing = [name for name in FEATURE_NAMES if name not in data["prior"] or name not in data["spread"]]
        if missing:
            raise ValueError(f"{path}: prior/spread lack features {missing}; run fer-au-fit")
        prior = np.array([float(data["prior"][name]) for name in FEATURE_NAMES])
        spread = np.array([float(data["spread"][name]) for name in FEATURE_NAMES])
        trace = float(data["trace_below_onset"])
        if not 0.0 < trace < 5.0:
            raise ValueError(f"{path}: trace_below_onset must lie in (0, 5)")
        scales = []
        for au in AU_NUMBERS:
            if au == 43:
                continue
            spec = data["aus"][f"AU{au}"]
            unknown = set(spec["weights"]) - set(FEATURE_NAMES)
            if unknown:
                raise ValueError(f"{path}: AU{au} uses unknown features {sorted(unknown)}")
            if not spec["full"] > spec["onset"]:
                raise ValueError(f"{path}: AU{au} needs full > onset")
            weights = np.array([float(spec["weights"].get(name, 0.0)) for name in FEATURE_NAMES])
            scales.append(AUScale(au, weights, float(spec["onset"]), float(spec["full"]),
                                  float(spec.get("max_yaw", data["max_yaw"])),
                                  float(spec.get("max_pitch", data["max_pitch"])), trace))
        eyes = data["eyes"]
        return cls(tuple(scales), prior, spread, CalibrationConfig.from_dict(data["calibration"]),
                   float(data["min_eye_distance_px"]), float(data["full_confidence_eye_distance_px"]),
                   float(eyes["closed_opening"]), float(eyes["max_yaw"]), float(eyes["max_pitch"]),
                   float(eyes["au43_onset"]))


class GeometricAUEstimator:
    """AU intensities and eye closure per track from the face mesh, calibrated to each person."""

    name = "geometry"
    needs_crop = False

    def __init__(self, config: GeometryConfig):
        self.config = config
        self._baselines: dict[str, PersonBaseline] = {}
        by_au = {scale.au: scale for scale in config.scales}
        self._scale_at: list[AUScale | None] = [by_au.get(au) for au in AU_NUMBERS]

    def baseline(self, track_id: str) -> PersonBaseline:
        if track_id not in self._baselines:
            self._baselines[track_id] = PersonBaseline(self.config.prior, self.config.spread,
                                                       self.config.calibration)
        return self._baselines[track_id]

    def capture_neutral(self, track_ids: list[str] | None, duration_s: float) -> list[str]:
        """Take the next ``duration_s`` seconds of each named track (every current one when None) as its
        neutral face; returns the tracks that will be captured."""
        chosen = list(self._baselines) if track_ids is None else [t for t in track_ids if t in self._baselines]
        for track_id in chosen:
            self._baselines[track_id].capture(duration_s)
        return chosen

    def set_neutral(self, track_id: str, meshes: list[np.ndarray]) -> None:
        """Use the median features of ``meshes`` (frames of this track known to be neutral) as its baseline."""
        if not meshes:
            raise ValueError(f"no neutral frames given for track {track_id}")
        self.baseline(track_id).set_neutral(np.median([compute_features(m)[0] for m in meshes], axis=0))

    def drop(self, track_id: str) -> None:
        """Forget a lost track's baseline (a returning person is calibrated afresh)."""
        self._baselines.pop(track_id, None)

    @property
    def tracks(self) -> int:
        return len(self._baselines)

    def estimate(self, track_id: str, landmarks: np.ndarray, head_pose: HeadPose, crop: np.ndarray | None = None,
                 stamp_s: float = 0.0, neutral_probability: float | None = None) -> ActionUnits:
        """The AUs of one face; ``neutral_probability`` (the learned classifier's, when one runs) and the
        stamp decide whether this frame may teach the person's neutral baseline."""
        cfg = self.config
        features, eye_distance_px = compute_features(landmarks)
        baseline = self.baseline(track_id)
        change = features - baseline.value
        count = len(AU_NUMBERS)
        intensity, estimated, confidence = np.zeros(count), np.zeros(count, bool), np.zeros(count)
        size = float(np.clip((eye_distance_px - cfg.min_eye_distance_px)
                             / (cfg.full_confidence_eye_distance_px - cfg.min_eye_distance_px), 0.0, 1.0))
        for index, scale in enumerate(self._scale_at):
            if scale is None:
                continue
            pose = _pose_factor(head_pose, scale.max_yaw, scale.max_pitch)
            if pose > 0.0 and size > 0.0:
                intensity[index] = scale.intensity(change)
                estimated[index] = True
                confidence[index] = size * pose
        closure = self._eye_closure(features, baseline)
        eye_pose = _pose_factor(head_pose, cfg.eye_max_yaw, cfg.eye_max_pitch)
        eyes_estimated = eye_pose > 0.0 and size > 0.0
        if eyes_estimated:
            mean_closure = float(np.mean(closure))
            intensity[AU43_INDEX] = float(np.clip(5.0 * (mean_closure - cfg.au43_onset) / (1.0 - cfg.au43_onset),
                                                  0.0, 5.0))
            estimated[AU43_INDEX] = True
            confidence[AU43_INDEX] = size * eye_pose
        activity = float(intensity[estimated].max(initial=0.0))
        if estimated.all():
            baseline.update(features, activity, stamp_s, neutral_probability)
        return ActionUnits(intensity, estimated, confidence, left_eye_closure=float(closure[0]),
                           right_eye_closure=float(closure[1]), eyes_estimated=eyes_estimated,
                           calibration=baseline.calibration)

    def _eye_closure(self, features: np.ndarray, baseline: PersonBaseline) -> np.ndarray:
        """Closure of the (left, right) eye: 0 at the person's open-eye opening, 1 at ``eye_closed_opening``."""
        opening = features[list(EYE_OPENING)]
        open_baseline = baseline.value[list(EYE_OPENING)]
        span = np.maximum(open_baseline - self.config.eye_closed_opening, 1e-6)
        return np.clip((open_baseline - opening) / span, 0.0, 1.0)


def _pose_factor(head_pose: HeadPose, max_yaw: float, max_pitch: float) -> float:
    """1 for a frontal face, falling to 0 at the AU's yaw/pitch limits."""
    yaw = 1.0 - abs(head_pose.yaw) / max_yaw
    pitch = 1.0 - abs(head_pose.pitch) / max_pitch
    if yaw <= 0.0 or pitch <= 0.0:
        return 0.0
    return float(np.sqrt(yaw * pitch))
