"""Choosing the emotion classifier by name and loading it, or falling back to the FACS mapping when so configured.

``emotion.yaml`` names the models the package ships (``classifier.models``:
name, file, what it was trained on) and which one is used
(``classifier.model``); the expression node's ``emotion_model`` parameter,
the graph's ``emotion_model`` argument and ``fer-analyze --emotion-model``
pick another by name (and the ``emotion_backend`` parameter and argument and
``fer-analyze --emotion-backend`` how it runs). A name that is not in the
list, and is not a path to a ``.pt`` file either, is an error that lists the
choices. A missing or corrupt model file is a start-up error naming the file,
unless ``classifier.on_missing_model: facs_only`` asks for a warning and the
FACS mapping alone.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from fer_perception.emotion.checkpoint import ModelLoadError
from fer_perception.paths import config_path, share_dir

ON_MISSING_MODEL = ("error", "facs_only")
MODEL_SUFFIX = ".pt"
RESTORE_HINT = ("restore the shipped models with 'git checkout -- models/' in the package source (then rebuild), "
                "point classifier.model at a good file, or set classifier.on_missing_model: facs_only")


class UnknownEmotionModelError(ValueError):
    """An emotion model was asked for by a name the configuration does not list."""


def emotion_config(path: Path | None = None) -> dict:
    """The emotion configuration (default: the package's ``config/emotion.yaml``)."""
    return yaml.safe_load((path or config_path("emotion.yaml")).read_text())


def model_names(config: dict) -> list[str]:
    """The names of the models ``config`` (``emotion.yaml``) lists, in its order."""
    return list(config["classifier"].get("models") or {})


def _package_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else share_dir() / path


def model_fusion(config: dict, name: str | None = None) -> dict:
    """The fusion weights for the model called ``name`` (default: ``classifier.model``): its own ``fusion`` in
    ``classifier.models`` (chosen on val for that model by ``fer-fit-fusion``), else the file's ``fusion``."""
    name = name or str(config["classifier"]["model"])
    entry = (config["classifier"].get("models") or {}).get(name) or {}
    return dict(entry.get("fusion") or config["fusion"])


def model_temperature(config: dict, name: str | None = None) -> float:
    """The temperature of the model called ``name`` (default: ``classifier.model``): its ``temperature`` in
    ``classifier.models`` (chosen on val by ``fer-fit-fusion``), else 1 (its probabilities as they are).
    ValueError when it is not a positive number."""
    name = name or str(config["classifier"]["model"])
    entry = (config["classifier"].get("models") or {}).get(name) or {}
    temperature = float(entry.get("temperature", 1.0))
    if not temperature > 0:
        raise ValueError(f"emotion model {name!r}: temperature must be positive, not {temperature}")
    return temperature


def model_path(config: dict, name: str | None = None) -> Path:
    """The file of the model called ``name`` (default: ``classifier.model``): a listed name, or a ``.pt`` path
    (relative paths are relative to the package's share directory)."""
    name = name or str(config["classifier"]["model"])
    models = config["classifier"].get("models") or {}
    if name in models:
        return _package_path(models[name]["file"])
    if name.endswith(MODEL_SUFFIX):
        return _package_path(name)
    raise UnknownEmotionModelError(f"unknown emotion model {name!r}; choose one of {', '.join(models) or '(none)'}, "
                                   f"or give a {MODEL_SUFFIX} file")


def load_emotion_model(config: dict, warn: Callable[[str], None], name: str | None = None,
                       backend: str | None = None):
    """The learned classifier called ``name`` (default: ``classifier.model`` of ``config``, ``emotion.yaml``)
    run by ``backend`` (default: its ``classifier.backend``), or None when it is not used or may be missing."""
    section = config["classifier"]
    if section["on_missing_model"] not in ON_MISSING_MODEL:
        raise ValueError(f"classifier.on_missing_model {section['on_missing_model']!r} is not one of "
                         f"{', '.join(ON_MISSING_MODEL)}")
    path = model_path(config, name)
    if float(config["fusion"]["learned"]) <= 0:
        return None
    try:
        if not path.is_file():
            raise ModelLoadError(f"emotion model file not found: {path}")
        from fer_perception.emotion.classifier import EmotionClassifier

        return EmotionClassifier(path, backend=backend or section["backend"],
                                 flip=bool(section.get("flip_tta", False)))
    except ModelLoadError as error:
        if section["on_missing_model"] == "facs_only":
            warn(f"{error}; using the FACS mapping alone")
            return None
        raise ModelLoadError(f"{error}; {RESTORE_HINT}") from error
