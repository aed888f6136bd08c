"""Causal temporal smoothing per person, in seconds from message stamps, not in frames.

Every filter takes the stamp of each sample, so a 15 fps and a 30 fps camera
give the same behaviour and dropped frames only widen a time step.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np


class ExponentialSmoother:
    """Exponential moving average with time constant ``tau_s``: alpha = 1 - exp(-dt / tau)."""

    def __init__(self, tau_s: float):
        self.tau_s = tau_s
        self.value: np.ndarray | None = None
        self._last_s: float | None = None

    def update(self, value: np.ndarray, stamp_s: float) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self.value is None or self.tau_s <= 0.0:
            self.value = value.copy()
        else:
            dt = max(stamp_s - self._last_s, 0.0)
            alpha = 1.0 - math.exp(-dt / self.tau_s)
            self.value = self.value + alpha * (value - self.value)
        self._last_s = stamp_s
        return self.value


class FrameAttentionSmoother:
    """Quality-weighted mean over the last ``window_s`` seconds, as frame-attention networks weight frames.

    A frame's weight is its face quality (size, detection confidence,
    frontality, sharpness); blurred or turned-away frames count little.
    """

    def __init__(self, window_s: float, min_weight: float = 1e-3):
        self.window_s = window_s
        self.min_weight = min_weight
        self._frames: deque[tuple[float, float, np.ndarray]] = deque()

    def update(self, value: np.ndarray, stamp_s: float, quality: float) -> np.ndarray:
        self._frames.append((stamp_s, max(quality, self.min_weight), np.asarray(value, dtype=np.float64)))
        while self._frames and self._frames[0][0] < stamp_s - self.window_s:
            self._frames.popleft()
        weights = np.array([w for _, w, _ in self._frames])
        values = np.array([v for _, _, v in self._frames])
        return weights @ values / weights.sum()


class LabelHysteresis:
    """A label that changes only when another class leads by ``margin`` for ``min_dwell_s`` seconds.

    This is the smooth prediction of the coarse-to-fine cascade: two close
    classes trading the lead frame by frame do not make the label flicker.
    """

    def __init__(self, margin: float, min_dwell_s: float):
        self.margin = margin
        self.min_dwell_s = min_dwell_s
        self.label: int | None = None
        self._challenger: int | None = None
        self._challenger_since: float = 0.0

    def update(self, probabilities: np.ndarray, stamp_s: float) -> int:
        best = int(np.argmax(probabilities))
        if self.label is None:
            self.label = best
        elif best != self.label and probabilities[best] >= probabilities[self.label] + self.margin:
            if best != self._challenger:
                self._challenger, self._challenger_since = best, stamp_s
            if stamp_s - self._challenger_since >= self.min_dwell_s:
                self.label, self._challenger = best, None
        else:
            self._challenger = None
        return self.label
