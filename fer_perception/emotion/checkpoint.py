"""Saving and loading emotion models as self-describing, weights-only files.

A shipped model is one ``torch.save`` file that holds the weights and
everything needed to use them (architecture and its arguments, label order,
input size, colour, normalisation, how it was trained), built only from
tensors, dicts, lists, strings and numbers so it loads with
``torch.load(path, weights_only=True)``: opening a model file never runs code.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_perception.emotion.lineage import compact_lineage, expand_lineage
from fer_perception.emotion.network import build_network

FORMAT = "fer_perception.emotion/1"
"""Tag stored in every model file; files without it are rejected."""


class ModelLoadError(RuntimeError):
    """An emotion model file is missing, unreadable or not a model of this package; the message names the file."""


@dataclass(frozen=True)
class ModelSpec:
    """What a model file says about its network and the input it expects."""

    architecture: str
    """Name in :data:`fer_perception.emotion.network.ARCHITECTURES`."""
    kwargs: dict[str, Any]
    """Constructor arguments of the architecture (lists, numbers)."""
    labels: tuple[str, ...]
    """Class name of each output column."""
    input_size: int
    """Side of the square input in pixels."""
    color: str
    """``gray`` (one channel) or ``rgb``."""
    mean: float
    """Input normalisation: (pixel / 255 - mean) / std."""
    std: float
    training: dict[str, Any] = field(default_factory=dict)
    """Provenance: data file, split, seed, command, selected epoch and its val accuracy, and the ancestors'
    records (stored once each, :mod:`fer_perception.emotion.lineage`)."""

    def to_dict(self) -> dict[str, Any]:
        spec = asdict(self)
        spec["labels"] = list(self.labels)
        spec["training"] = compact_lineage(self.training)
        return spec

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> ModelSpec:
        return cls(architecture=spec["architecture"], kwargs=dict(spec["kwargs"]), labels=tuple(spec["labels"]),
                   input_size=int(spec["input_size"]), color=str(spec["color"]), mean=float(spec["mean"]),
                   std=float(spec["std"]), training=expand_lineage(dict(spec.get("training", {}))))


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: a crash never leaves half a file.
    The file gets the permissions the umask gives a new file (``mkstemp`` alone would make it owner-only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(temporary, 0o666 & ~umask)
        torch.save(obj, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_model(path: str | os.PathLike[str], network: nn.Module, spec: ModelSpec) -> None:
    """Write ``network``'s weights (float32, contiguous) with ``spec`` as a weights-only model file."""
    state = {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in network.state_dict().items()}
    atomic_save({"format": FORMAT, "spec": spec.to_dict(), "state_dict": state}, path)


def load_model(path: str | os.PathLike[str]) -> tuple[nn.Module, ModelSpec]:
    """The network of a model file, in eval mode, and its spec; :class:`ModelLoadError` if that fails."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"emotion model file not found: {path}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        raise ModelLoadError(f"emotion model file {path} is corrupt or not a torch file: {error}") from error
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ModelLoadError(f"{path} is not an emotion model file (expected format {FORMAT!r})")
    try:
        spec = ModelSpec.from_dict(content["spec"])
        network = build_network(spec.architecture, **spec.kwargs)
        network.load_state_dict(content["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelLoadError(f"emotion model file {path} is inconsistent: {error}") from error
    return network.eval(), spec
