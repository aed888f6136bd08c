"""Fusing the learned and FACS probabilities, the coarse-to-fine label, and valence/arousal.

Fusion is a linear opinion pool with configurable weights (a source with
weight 0, or missing in a frame, drops out). The coarse-to-fine decision
first picks among {neutral, happy, surprise, negative} by summed
probability, then within negative among {angry, disgust, fear, sad}, as the
coarse-to-fine cascade for video expression recognition did. Its scores
(:func:`cascade_scores`) carry the cascade through the whole path: the
smoothed label's hysteresis and the emotion episodes read them instead of
the flat probabilities when ``coarse_to_fine`` is on. Valence and
arousal are the probability-weighted mean of each class's circumplex
coordinates; their confidence is 1 minus the normalised entropy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_perception.types import EMOTION_LABELS

NEGATIVE = tuple(EMOTION_LABELS.index(c) for c in ("angry", "disgust", "fear", "sad"))
COARSE_SINGLES = tuple(EMOTION_LABELS.index(c) for c in ("neutral", "happy", "surprise"))


def fuse(sources: list[tuple[np.ndarray | None, float]]) -> np.ndarray | None:
    """Weighted mean of the available probability vectors, renormalised; None when none is available."""
    available = [(p, w) for p, w in sources if p is not None and w > 0]
    if not available:
        return None
    total = sum(w for _, w in available)
    fused = sum(w * np.asarray(p, dtype=np.float64) for p, w in available) / total
    return fused / fused.sum()


def cascade_scores(probabilities: np.ndarray) -> np.ndarray:
    """Per class, the evidence the cascade sees: a coarse single class its probability; a negative class the
    negative group's summed probability, scaled by its share against the best negative class. The best
    negative class therefore scores the whole group and the argmax is the cascade's choice; a close second
    negative class scores close to it, so the label's hysteresis does not flip between them on small changes
    (and both may open an emotion episode: the evidence that the face is negative is theirs alike)."""
    scores = np.asarray(probabilities, dtype=np.float64).copy()
    negative = scores[list(NEGATIVE)]
    scores[list(NEGATIVE)] = negative.sum() * negative / max(float(negative.max()), 1e-12)
    return scores


def coarse_to_fine_label(probabilities: np.ndarray) -> int:
    """The class chosen coarse-to-fine (index into ``EMOTION_LABELS``)."""
    return int(np.argmax(cascade_scores(probabilities)))


@dataclass(frozen=True)
class Circumplex:
    """Each class's (valence, arousal) on Russell's circumplex, in [-1, 1]."""

    coordinates: np.ndarray  # classes x 2

    @classmethod
    def from_dict(cls, data: dict) -> "Circumplex":
        missing = set(EMOTION_LABELS) - set(data)
        if missing:
            raise ValueError(f"circumplex coordinates missing for {sorted(missing)}")
        return cls(np.array([[float(v) for v in data[label]] for label in EMOTION_LABELS]))

    def valence_arousal(self, probabilities: np.ndarray) -> tuple[float, float, float]:
        """(valence, arousal, confidence) for a probability vector."""
        valence, arousal = np.clip(probabilities @ self.coordinates, -1.0, 1.0)
        p = np.clip(probabilities, 1e-12, 1.0)
        entropy = float(-(p * np.log(p)).sum() / np.log(len(p)))
        return float(valence), float(arousal), float(np.clip(1.0 - entropy, 0.0, 1.0))
