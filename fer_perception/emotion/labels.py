"""The emotion label set and the spellings other datasets use for it.

The model's outputs follow FER2013's class order; evaluation datasets name
the same emotions differently (``happiness``, ``Anger``, ...), so names are
mapped to this set before comparing, and classes outside it are reported.
"""
from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""Class names in FER2013 order (index = FER2013 label = model output column)."""

ALIASES: dict[str, str] = {
    "anger": "angry",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
}
"""Other spellings of the emotions (lower case) mapped to the names in :data:`EMOTIONS`."""


def canonical_label(name: str) -> str:
    """``name`` lower-cased, stripped and mapped through :data:`ALIASES`.

    The result is one of :data:`EMOTIONS` when the emotion is known; any other
    class (e.g. ``contempt``) comes back lower-cased and unchanged otherwise.
    """
    key = name.strip().lower()
    return ALIASES.get(key, key)
