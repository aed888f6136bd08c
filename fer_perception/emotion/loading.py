"""Loading the configured emotion classifier, or falling back to the FACS mapping when so configured.

A missing or corrupt model file is a start-up error naming the file, unless
``classifier.on_missing_model: facs_only`` asks for a warning and the FACS
mapping alone.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fer_perception.emotion.checkpoint import ModelLoadError
from fer_perception.paths import share_dir

ON_MISSING_MODEL = ("error", "facs_only")
RESTORE_HINT = ("restore the shipped models with 'git checkout -- models/' in the package source (then rebuild), "
                "point classifier.model at a good file, or set classifier.on_missing_model: facs_only")


def model_path(config: dict) -> Path:
    path = Path(config["classifier"]["model"])
    return path if path.is_absolute() else share_dir() / path


def load_emotion_model(config: dict, warn: Callable[[str], None]):
    """The learned classifier of ``config`` (``emotion.yaml``), or None when it is not used or may be missing."""
    section = config["classifier"]
    if section["on_missing_model"] not in ON_MISSING_MODEL:
        raise ValueError(f"classifier.on_missing_model {section['on_missing_model']!r} is not one of "
                         f"{', '.join(ON_MISSING_MODEL)}")
    if float(config["fusion"]["learned"]) <= 0:
        return None
    try:
        path = model_path(config)
        if not path.is_file():
            raise ModelLoadError(f"emotion model file not found: {path}")
        from fer_perception.emotion.classifier import EmotionClassifier

        return EmotionClassifier(path, backend=section["backend"])
    except ModelLoadError as error:
        if section["on_missing_model"] == "facs_only":
            warn(f"{error}; using the FACS mapping alone")
            return None
        raise ModelLoadError(f"{error}; {RESTORE_HINT}") from error
