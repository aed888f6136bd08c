"""Calibrating and fusing the learned and FACS probabilities, the coarse-to-fine label, and valence/arousal.

A model's probabilities are first recalibrated by its temperature
(:func:`temperature_scaled`, Guo et al., 2017: chosen on val by
``fer-fit-fusion``), so that a confidence of 0.7 is right about 70 % of the
time before smoothing and events read it.

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


def temperature_scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``probabilities`` (..., C) as the softmax of their logits divided by ``temperature``: below 1 sharper,
    above 1 flatter, the argmax unchanged. softmax(log p / T) equals softmax(z / T) for p = softmax(z), so a
    classifier's output probabilities suffice."""
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)) / temperature
    scaled = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (scaled / scaled.sum(axis=-1, keepdims=True)).astype(np.asarray(probabilities).dtype)


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
