"""Each person's neutral face, learned online: the baseline AU features are measured against.

Faces differ at rest (brow height, mouth width), so an AU is a change from
that person's neutral face, not from an average one. OpenFace normalises
per person with the median over a whole video; this does the same causally:
the baseline is the median of the recent frames in which the face was at
rest (no AU above ``activity_max`` against the current baseline), blended
with a population prior that dominates until enough such frames are seen.
"""
from __future__ import annotations

from collections import deque

import numpy as np


class PersonBaseline:
    """Robust, causal neutral-feature estimate for one track."""

    def __init__(self, prior: np.ndarray, prior_weight: float, window: int, activity_max: float,
                 refresh_every: int = 5):
        self.prior = np.asarray(prior, dtype=np.float64)
        self.prior_weight = prior_weight
        self.activity_max = activity_max
        self.refresh_every = refresh_every
        self._rest_frames: deque[np.ndarray] = deque(maxlen=window)
        self._since_refresh = 0
        self.value = self.prior.copy()

    @property
    def rest_frames(self) -> int:
        return len(self._rest_frames)

    def update(self, features: np.ndarray, activity: float) -> None:
        """Add a frame whose largest AU intensity against the current baseline is ``activity``."""
        if activity > self.activity_max:
            return
        self._rest_frames.append(features)
        self._since_refresh += 1
        if self._since_refresh >= self.refresh_every or len(self._rest_frames) < self.refresh_every:
            self._since_refresh = 0
            count = len(self._rest_frames)
            median = np.median(np.asarray(self._rest_frames), axis=0)
            self.value = (count * median + self.prior_weight * self.prior) / (count + self.prior_weight)
