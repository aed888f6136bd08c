"""The learned AU estimator: trained networks on the aligned face crop, merged with the geometric estimator.

Users with AU-labelled data (DISFA, BP4D) train an
:class:`~fer_perception.au.au_network.AUNet` with ``fer-train-au`` and select
``estimator: learned`` in ``config/action_units.yaml``, listing one or more
checkpoints under ``learned.checkpoints`` (paths relative to the package
share folder unless absolute): for example a DISFA-style 12-AU model and a
BP4D-style 5-AU model, merged into the 15 AUs as the original AU system did.

Merge rule, per face and frame (arrays follow ``AU_NUMBERS``):

* an AU that one or more networks predict gets the mean of their predictions;
* an AU that no network predicts gets the geometric estimator's intensity;
* AU43 and the per-eye closure always come from the geometric estimator
  (a checkpoint may not list AU43);
* ``estimated`` and ``confidence`` of every AU are the geometric estimator's
  for this face, i.e. its face-size and head-pose gate for that AU: a network
  AU is not estimated where the face is too small or turned too far, and then
  reads 0 like a geometric one.

The geometric estimator runs on every call (it keeps each person's neutral
baseline and open-eye calibration); :meth:`LearnedAUEstimator.drop` forwards
to it.

Checkpoint format (``format_version`` 1): one ``torch.save`` file holding a
dict built only from tensors, dicts, lists, strings and numbers, so that it
loads with ``torch.load(path, weights_only=True)`` and opening a checkpoint
never runs code. Keys:

* ``format``: ``"fer_perception.au"``; ``format_version``: ``1``;
* ``architecture``: a name in :data:`~fer_perception.au.au_network.ARCHITECTURES`
  (``"au_net"``) and ``architecture_kwargs``: its constructor arguments
  (``num_aus``, ``in_channels``, ``widths``, ``dropout``);
* ``aus``: FACS numbers of the outputs, in output order (a subset of
  ``AU_NUMBERS`` without 43, no repeats);
* ``input_size``: side of the square input in pixels; ``channels``: 1 (gray)
  or 3 (RGB); ``mean``, ``std``: one value per channel, applied to pixels
  scaled to [0, 1];
* ``state_dict``: the weights, name to tensor;
* ``training``: provenance (CSV, rows, epochs, seed, validation error,
  command); informational only.

A missing, unreadable or inconsistent checkpoint raises
:class:`AUCheckpointError` naming the file, at start-up.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fer_perception.au.au_network import InputSpec, build_network, prepare_crop, to_tensor
from fer_perception.au.geometry import GeometricAUEstimator
from fer_perception.paths import share_dir
from fer_perception.types import AU_NUMBERS, ActionUnits, HeadPose

FORMAT = "fer_perception.au"
"""Tag stored in every AU checkpoint; files without it are rejected."""
FORMAT_VERSION = 1
"""The checkpoint layout this module writes and reads (see the module docstring)."""
LEARNABLE_AUS: tuple[int, ...] = tuple(au for au in AU_NUMBERS if au != 43)
"""AUs a network may predict; AU43 always follows the geometric eye closure."""
REQUIRED_KEYS = ("architecture", "architecture_kwargs", "aus", "input_size", "channels", "mean", "std", "state_dict")


class AUCheckpointError(RuntimeError):
    """An AU checkpoint is missing, unreadable or not usable here; the message names the file."""


@dataclass
class AUModel:
    """A network together with everything needed to use it and to save it again."""

    network: nn.Module
    aus: tuple[int, ...]
    spec: InputSpec
    architecture: str
    architecture_kwargs: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)

    def predict(self, crop_rgb: np.ndarray) -> np.ndarray:
        """Intensities (0-5) of ``aus`` for one H x W x 3 uint8 RGB aligned crop."""
        batch = to_tensor(prepare_crop(crop_rgb, self.spec.size, self.spec.channels)[None], self.spec)
        with torch.inference_mode():
            return self.network(batch)[0].numpy().astype(np.float64)


def check_aus(aus: Sequence[int]) -> None:
    """Raise ValueError unless ``aus`` are distinct AUs a network may predict."""
    if not aus:
        raise ValueError("the AU list is empty")
    unknown = [au for au in aus if au not in LEARNABLE_AUS]
    if unknown:
        raise ValueError(f"AU(s) {unknown} cannot be learned here; choose from {list(LEARNABLE_AUS)} "
                         "(AU43 follows the geometric eye closure)")
    if len(set(aus)) != len(aus):
        raise ValueError(f"the AU list {list(aus)} repeats an AU")


def save_checkpoint(path: Path, model: AUModel) -> None:
    """Write ``model`` as a weights-only checkpoint, atomically (a crash never leaves half a file)."""
    spec = model.spec
    content = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": model.architecture,
               "architecture_kwargs": dict(model.architecture_kwargs), "aus": list(model.aus),
               "input_size": spec.size, "channels": spec.channels, "mean": list(spec.mean), "std": list(spec.std),
               "state_dict": {name: tensor.detach().cpu().contiguous().clone()
                              for name, tensor in model.network.state_dict().items()},
               "training": dict(model.training)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # same folder, so the rename is atomic
    try:
        torch.save(content, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> AUModel:
    """The model of an AU checkpoint, network in eval mode; :class:`AUCheckpointError` naming the file if not."""
    path = Path(path)
    if not path.is_file():
        raise AUCheckpointError(f"AU checkpoint not found: {path}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated, foreign or unsafe files
        raise AUCheckpointError(_load_failure(path, error)) from error
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise AUCheckpointError(f"{path} is not an AU checkpoint (expected format {FORMAT!r})")
    if content.get("format_version") != FORMAT_VERSION:
        raise AUCheckpointError(f"AU checkpoint {path} has format_version {content.get('format_version')!r}; "
                                f"this version of fer_perception reads {FORMAT_VERSION}")
    missing = [key for key in REQUIRED_KEYS if key not in content]
    if missing:
        raise AUCheckpointError(f"AU checkpoint {path} lacks {', '.join(missing)}")
    try:
        return _model_from(content)
    except (TypeError, ValueError, RuntimeError) as error:
        raise AUCheckpointError(f"AU checkpoint {path} is inconsistent: {error}") from error


def _model_from(content: dict[str, Any]) -> AUModel:
    """Build and check the model a checkpoint's content describes (errors: TypeError, ValueError, RuntimeError)."""
    aus = tuple(int(au) for au in content["aus"])
    check_aus(aus)
    spec = InputSpec(int(content["input_size"]), int(content["channels"]),
                     tuple(float(v) for v in content["mean"]), tuple(float(v) for v in content["std"]))
    kwargs = dict(content["architecture_kwargs"])
    network = build_network(str(content["architecture"]), **kwargs)
    network.load_state_dict(content["state_dict"])
    network.eval()
    with torch.inference_mode():
        shape = tuple(network(torch.zeros(1, spec.channels, spec.size, spec.size)).shape)
    if shape != (1, len(aus)):
        raise ValueError(f"the network outputs {shape[1:]} values per face but the checkpoint lists {len(aus)} AUs")
    return AUModel(network, aus, spec, str(content["architecture"]), kwargs, dict(content.get("training", {})))


def _load_failure(path: Path, error: Exception) -> str:
    """A short message for a failed ``torch.load`` (torch's own is long and suggests loading unsafely)."""
    text = " ".join(str(error).split())
    unsafe = re.search(r"Unsupported global: GLOBAL \S+", text)
    if unsafe:
        return (f"AU checkpoint {path} holds objects other than tensors and plain metadata "
                f"({unsafe.group(0)}); it is not loaded")
    operand = re.search(r"Unsupported operand \d+", text)
    reason = operand.group(0) if operand else f"{type(error).__name__}{': ' + text[:200] if text else ''}"
    return f"AU checkpoint {path} is corrupt or not a torch file ({reason})"


def configured_checkpoints(config: dict, config_file: Path) -> list[Path]:
    """The checkpoint paths under ``learned.checkpoints`` of a parsed config (relative ones: to the share folder)."""
    entries = (config.get("learned") or {}).get("checkpoints") or []
    if not entries:
        raise ValueError(f"no checkpoints configured under learned.checkpoints in {config_file}")
    paths = [Path(entry).expanduser() for entry in entries]
    return [path if path.is_absolute() else share_dir() / path for path in paths]


class LearnedAUEstimator:
    """AUs from one or more trained networks on the crop, the rest and the eyes from geometry (module docstring)."""

    name = "learned"
    needs_crop = True

    def __init__(self, checkpoints: Sequence[Path], fallback: GeometricAUEstimator) -> None:
        if not checkpoints:
            raise ValueError("the learned AU estimator needs at least one checkpoint")
        self.fallback = fallback
        self.models = [load_checkpoint(path) for path in checkpoints]
        self._indices = [np.array([AU_NUMBERS.index(au) for au in model.aus]) for model in self.models]
        self._counts = np.zeros(len(AU_NUMBERS))
        for indices in self._indices:
            self._counts[indices] += 1

    @property
    def learned_aus(self) -> tuple[int, ...]:
        """The AUs at least one network predicts."""
        return tuple(au for au, count in zip(AU_NUMBERS, self._counts) if count)

    def estimate(self, track_id: str, landmarks: np.ndarray, head_pose: HeadPose, crop: np.ndarray | None = None,
                 stamp_s: float = 0.0, neutral_probability: float | None = None) -> ActionUnits:
        if crop is None:
            raise ValueError("the learned AU estimator needs the aligned face crop: pass crop= "
                             "(its needs_crop is True)")
        geometric = self.fallback.estimate(track_id, landmarks, head_pose, stamp_s=stamp_s,
                                           neutral_probability=neutral_probability)
        intensity = np.where(self._counts > 0, self._mean_prediction(crop), geometric.intensity)
        intensity[~geometric.estimated] = 0.0
        return replace(geometric, intensity=intensity)

    def drop(self, track_id: str) -> None:
        """Forget a lost track's baseline in the geometric fallback (the networks keep no per-track state)."""
        self.fallback.drop(track_id)

    def capture_neutral(self, track_ids: list[str] | None, duration_s: float) -> list[str]:
        """Neutral capture happens in the geometric fallback, which keeps the baselines."""
        return self.fallback.capture_neutral(track_ids, duration_s)

    def set_neutral(self, track_id: str, meshes: list[np.ndarray]) -> None:
        self.fallback.set_neutral(track_id, meshes)

    def _mean_prediction(self, crop: np.ndarray) -> np.ndarray:
        """Per AU, the mean over the networks that predict it (0 where none does)."""
        total = np.zeros(len(AU_NUMBERS))
        for model, indices in zip(self.models, self._indices):
            total[indices] += model.predict(crop)
        return total / np.maximum(self._counts, 1)
