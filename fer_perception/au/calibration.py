"""Each person's neutral face, learned online or captured on request: the baseline AU features are measured against.

Faces differ at rest (brow height, mouth width), so an AU is a change from
that person's neutral face, not from an average one. Learning that face
online fails both ways if done naively: a person first seen frowning teaches
a "neutral" frown, and a person whose rest face differs from the population
never looks "at rest" against it. So the population prior stays in charge
until the person has shown a face the system is confident is neutral:

* a frame is a *neutral candidate* when the learned classifier (when one
  runs) gives neutral at least ``neutral_probability_min`` and no AU exceeds
  ``activity_max`` against the current baseline;
* candidates count only in unbroken stretches of ``stable_s`` seconds
  (agreement over time, not one lucky frame);
* the baseline is the median of the accepted frames blended with the prior
  (which counts as ``prior_weight_frames`` frames), and each feature stays
  within ``max_shift_spreads`` population spreads of the prior, so no run of
  frames can move it to an expressive face.

:attr:`PersonBaseline.calibration` says how far the person's own frames
have taken over (0: the prior alone, 1: an explicitly captured neutral).
A robot that can ask the person to relax calls :meth:`PersonBaseline.capture`
(the expression node's ``capture_neutral`` service); offline analysis can
name a time range as neutral (``fer-analyze --neutral``), which sets the
baseline with :meth:`PersonBaseline.set_neutral`.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CalibrationConfig:
    """How a track's neutral baseline may be learned (``calibration`` in ``config/action_units.yaml``)."""

    prior_weight_frames: float
    window_frames: int
    activity_max: float
    neutral_probability_min: float
    stable_s: float
    max_shift_spreads: float

    def __post_init__(self) -> None:
        if self.prior_weight_frames <= 0 or self.window_frames < 1:
            raise ValueError("calibration: prior_weight_frames must be > 0 and window_frames >= 1")
        if not 0.0 <= self.neutral_probability_min <= 1.0:
            raise ValueError("calibration: neutral_probability_min must lie in [0, 1]")
        if self.activity_max < 0 or self.stable_s < 0 or self.max_shift_spreads < 0:
            raise ValueError("calibration: activity_max, stable_s and max_shift_spreads must not be negative")

    @classmethod
    def from_dict(cls, data: dict) -> "CalibrationConfig":
        return cls(float(data["prior_weight_frames"]), int(data["window_frames"]), float(data["activity_max"]),
                   float(data["neutral_probability_min"]), float(data["stable_s"]),
                   float(data["max_shift_spreads"]))


class PersonBaseline:
    """Robust, causal, bounded neutral-feature estimate for one track."""

    def __init__(self, prior: np.ndarray, spread: np.ndarray, config: CalibrationConfig):
        self.prior = np.asarray(prior, dtype=np.float64)
        self._max_shift = config.max_shift_spreads * np.asarray(spread, dtype=np.float64)
        self.config = config
        self._accepted: deque[np.ndarray] = deque(maxlen=config.window_frames)
        self._pending: deque[np.ndarray] = deque(maxlen=config.window_frames)
        self._pending_since: float | None = None
        self._capture_until: float | None = None
        self._capture_duration = 0.0
        self._captured: list[np.ndarray] = []
        self.captured = False
        self.value = self.prior.copy()

    @property
    def rest_frames(self) -> int:
        """Frames the person's own neutral is currently read from."""
        return len(self._accepted)

    @property
    def calibration(self) -> float:
        """0 while the prior alone is used, rising towards 1 as the person's own neutral frames take over;
        exactly 1 once a neutral face was captured or set explicitly."""
        if self.captured:
            return 1.0
        count = len(self._accepted)
        return count / (count + self.config.prior_weight_frames)

    @property
    def capturing(self) -> bool:
        return self._capture_until is not None or self._capture_duration > 0.0

    def capture(self, duration_s: float) -> None:
        """Take the next ``duration_s`` seconds of this person's frames as their neutral face."""
        if duration_s <= 0:
            raise ValueError("a neutral capture needs a positive duration")
        self._capture_duration, self._capture_until, self._captured = duration_s, None, []

    def set_neutral(self, features: np.ndarray) -> None:
        """Use ``features`` (the median of frames known to be neutral) as the baseline from now on."""
        self.value = np.asarray(features, dtype=np.float64).copy()
        self.captured = True
        self._capture_until, self._capture_duration = None, 0.0

    def update(self, features: np.ndarray, activity: float, stamp_s: float,
               neutral_probability: float | None = None) -> None:
        """Offer one frame: its features, its largest AU intensity against the current baseline, its time, and
        the learned classifier's neutral probability (None where no classifier runs)."""
        if self.capturing:
            self._capture(features, stamp_s)
            return
        if self.captured:
            return
        candidate = activity <= self.config.activity_max and (
            neutral_probability is None or neutral_probability >= self.config.neutral_probability_min)
        if not candidate:
            self._pending.clear()
            self._pending_since = None
            return
        if self._pending_since is None:
            self._pending_since = stamp_s
        self._pending.append(features)
        if stamp_s - self._pending_since >= self.config.stable_s:
            self._accepted.extend(self._pending)
            self._pending.clear()
            self._refresh()

    def _capture(self, features: np.ndarray, stamp_s: float) -> None:
        if self._capture_until is None:
            self._capture_until = stamp_s + self._capture_duration
        self._captured.append(features)
        if stamp_s >= self._capture_until:
            self.set_neutral(np.median(np.asarray(self._captured), axis=0))
            self._captured = []

    def _refresh(self) -> None:
        count = len(self._accepted)
        median = np.median(np.asarray(self._accepted), axis=0)
        shift = np.clip(median - self.prior, -self._max_shift, self._max_shift)
        self.value = self.prior + count * shift / (count + self.config.prior_weight_frames)
