"""AU estimators chosen by name in config: the interface they share and the registry.

The expression stage only calls :class:`AUEstimator`; a new estimator (a
network trained on DISFA or BP4D, say) registers a factory here under a name
and is then selectable with ``estimator: NAME`` in ``config/action_units.yaml``.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import yaml

from fer_perception.au.geometry import GeometricAUEstimator, GeometryConfig
from fer_perception.types import ActionUnits, HeadPose


class AUEstimator(Protocol):
    """Per-track AU intensities and eye closure for one face at a time."""

    name: str
    needs_crop: bool  # whether ``estimate`` needs the aligned face crop

    def estimate(self, track_id: str, landmarks: np.ndarray, head_pose: HeadPose, crop: np.ndarray | None = None,
                 stamp_s: float = 0.0, neutral_probability: float | None = None) -> ActionUnits:
        """The AUs of track ``track_id`` in this frame (``stamp_s``: source time in seconds;
        ``neutral_probability``: the learned classifier's, which gates neutral calibration)."""

    def drop(self, track_id: str) -> None:
        """Forget a track's state when the track is lost."""

    def capture_neutral(self, track_ids: list[str] | None, duration_s: float) -> list[str]:
        """Take the next ``duration_s`` seconds of these tracks (all current ones when None) as their neutral
        face; returns the tracks that will be captured."""

    def set_neutral(self, track_id: str, meshes: list[np.ndarray]) -> None:
        """Use these meshes of a track, known to be neutral, as its neutral face."""


EstimatorFactory = Callable[[dict, Path], AUEstimator]
_FACTORIES: dict[str, EstimatorFactory] = {}


def register_au_estimator(name: str) -> Callable[[EstimatorFactory], EstimatorFactory]:
    def add(factory: EstimatorFactory) -> EstimatorFactory:
        _FACTORIES[name] = factory
        return factory
    return add


def au_estimator_names() -> tuple[str, ...]:
    return tuple(sorted(_FACTORIES))


def create_au_estimator(config_file: Path, name: str | None = None) -> AUEstimator:
    """The estimator named ``name`` (default: the file's ``estimator``), configured from ``config_file``."""
    config = yaml.safe_load(Path(config_file).read_text())
    name = name or config["estimator"]
    if name not in _FACTORIES:
        raise ValueError(f"unknown AU estimator {name!r}; choose one of: {', '.join(au_estimator_names())}")
    return _FACTORIES[name](config, Path(config_file))


@register_au_estimator("geometry")
def _geometry(config: dict, config_file: Path) -> AUEstimator:
    return GeometricAUEstimator(GeometryConfig.from_yaml(config_file))


@register_au_estimator("learned")
def _learned(config: dict, config_file: Path) -> AUEstimator:
    from fer_perception.au.learned import LearnedAUEstimator, configured_checkpoints  # torch only when chosen

    return LearnedAUEstimator(configured_checkpoints(config, config_file),
                              GeometricAUEstimator(GeometryConfig.from_yaml(config_file)))
