"""Emotion probabilities from AU intensities by FACS prototypes, interpretable and weight-free.

Each emotion's prototype (EMFACS-style, ``config/emotion.yaml``: happiness
6+12, sadness 1+4+15, surprise 1+2+5+26, ...) scores the weighted mean of its
AUs' intensities on a 0-1 scale; neutral scores high while no prototype is
active; a softmax turns the scores into probabilities over ``EMOTION_LABELS``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_perception.types import AU_NUMBERS, EMOTION_LABELS, ActionUnits


@dataclass(frozen=True)
class FacsMapping:
    """The prototype table as a (classes x AUs) weight matrix, and how scores become probabilities."""

    weights: np.ndarray
    neutral_until: float
    temperature: float
    min_estimated: float

    @classmethod
    def from_dict(cls, data: dict) -> "FacsMapping":
        weights = np.zeros((len(EMOTION_LABELS), len(AU_NUMBERS)))
        for label, aus in data["prototypes"].items():
            if label not in EMOTION_LABELS or label == "neutral":
                raise ValueError(f"FACS prototype for unknown class {label!r}; classes: {EMOTION_LABELS}")
            for au, weight in aus.items():
                if int(au) not in AU_NUMBERS:
                    raise ValueError(f"FACS prototype {label}: AU{au} is not estimated; AUs: {AU_NUMBERS}")
                weights[EMOTION_LABELS.index(label), AU_NUMBERS.index(int(au))] = float(weight)
        return cls(weights, float(data["neutral_until"]), float(data["temperature"]), float(data["min_estimated"]))

    def probabilities(self, units: ActionUnits) -> np.ndarray | None:
        """Probabilities over ``EMOTION_LABELS``, or None when too few AUs were estimated."""
        estimated = units.estimated.astype(float)
        total = self.weights.sum(axis=1)
        prototype = total > 0
        covered = (self.weights @ estimated)[prototype] / total[prototype]
        if covered.min() < self.min_estimated:
            return None
        active = self.weights @ (np.clip(units.intensity, 0, 5) / 5.0 * estimated)
        scores = np.zeros(len(EMOTION_LABELS))
        scores[prototype] = active[prototype] / np.maximum(self.weights @ estimated, 1e-9)[prototype]
        neutral = EMOTION_LABELS.index("neutral")
        scores[neutral] = float(np.clip(1.0 - scores[prototype].max() / self.neutral_until, 0.0, 1.0))
        logits = scores / self.temperature
        exp = np.exp(logits - logits.max())
        return exp / exp.sum()
