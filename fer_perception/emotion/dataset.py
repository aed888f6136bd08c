"""FER2013-layout data: loading an ``.npz``, picking a split, and augmenting training batches.

Training keeps the whole split in memory as one uint8 tensor (28,709 x 48 x
48 is 66 MB) and augments a batch at a time with vectorised torch ops
(one ``affine_grid``/``grid_sample`` for rotation, scale, shift and flip,
then brightness/contrast and random erasing), so the 2-core CPU spends its
time in the network rather than in per-image Python.

The rare class (disgust, 436 of 28,709 training faces) is handled by a
class-weighted loss (:func:`class_weights`), not by weighted sampling:
oversampling would show the same few hundred disgust faces ~16 times an
epoch (memorised despite augmentation) and would shift the batch statistics
BatchNorm learns away from the natural class mix the model meets at test
time; a softened inverse-frequency weight instead raises disgust's share of
the gradient about fourfold relative to happy while every face is seen once
per epoch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

INPUT_SIZE = 48
"""Side of the (square, grayscale) model input in pixels, FER2013's native size."""


class DatasetError(RuntimeError):
    """An ``.npz`` file that is missing or not in the FER2013 layout; the message names the file."""


@dataclass(frozen=True)
class FaceSet:
    """Images and labels of one dataset (or one split of it), with the dataset's class names.

    ``images`` is (N, H, W) gray or (N, H, W, 3) RGB uint8; ``labels`` index ``classes``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def load_npz(path: str | Path, split: str | None = None) -> FaceSet:
    """Faces of an ``.npz`` with arrays ``images``, ``labels``, ``classes`` (and optionally ``split``,
    ``split_names``); with ``split`` given, only that split's faces.

    Raises :class:`DatasetError` naming the file when it is missing, unreadable, lacks
    an array, or has no split of that name.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as error:  # np.load raises several types for damaged files
        raise DatasetError(f"cannot read dataset {path}: {error}") from error
    missing = {"images", "labels", "classes"} - arrays.keys()
    if missing:
        raise DatasetError(f"dataset {path} lacks array(s) {sorted(missing)}")
    images, labels = arrays["images"], arrays["labels"].astype(np.int64)
    classes = tuple(str(name) for name in arrays["classes"])
    if len(images) != len(labels):
        raise DatasetError(f"dataset {path}: {len(images)} images but {len(labels)} labels")
    if split is not None:
        if "split" not in arrays:
            raise DatasetError(f"dataset {path} has no 'split' array; cannot select split {split!r}")
        names = [str(name) for name in arrays.get("split_names", np.array(["train", "val", "test"]))]
        if split not in names:
            raise DatasetError(f"dataset {path} has no split {split!r}; it has {names}")
        keep = arrays["split"] == names.index(split)
        images, labels = images[keep], labels[keep]
    return FaceSet(images=images, labels=labels, classes=classes)


def pixel_statistics(images: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the pixels on a 0..1 scale (the input normalisation)."""
    values = images.astype(np.float64) / 255.0
    return float(values.mean()), float(values.std())


def class_weights(labels: np.ndarray, num_classes: int, power: float = 0.5) -> torch.Tensor:
    """Loss weights ``(count_max / count_c) ** power``, scaled to a count-weighted mean of 1.

    ``power`` 0.5 (square root) lifts disgust about 4x against happy on FER2013
    without the full 16x of plain inverse frequency, which costs overall accuracy.
    """
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = (counts.max() / np.maximum(counts, 1.0)) ** power
    weights /= (weights * counts).sum() / counts.sum()
    return torch.tensor(weights, dtype=torch.float32)


def normalise(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 (N, H, W) faces as the float (N, 1, H, W) network input."""
    return ((images.float() / 255.0 - mean) / std).unsqueeze(1)


@dataclass(frozen=True)
class Augmentation:
    """Random training transforms of a batch, each drawn per image.

    Geometric ones (applied as one resampling) model the spread of face
    framing: they also cover the small residual differences between FER2013's
    framing and the live crop's FER-framed window (see :mod:`fer_perception.emotion.classifier`).
    """

    max_rotation_deg: float = 15.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    max_shift: float = 0.10
    """Largest shift as a fraction of the image side (0.10 = 4.8 px at 48)."""
    flip_probability: float = 0.5
    brightness: float = 0.25
    """Largest additive brightness change on a 0..1 scale."""
    contrast: float = 0.30
    """Largest relative contrast change around the image mean."""
    erase_probability: float = 0.5
    erase_area: tuple[float, float] = (0.02, 0.20)
    """Erased rectangle's area as a fraction of the image."""

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augmented copies of uint8 (N, H, W) faces as float (N, H, W) on a 0..1 scale."""
        batch = images.float().unsqueeze(1) / 255.0
        batch = self._geometric(batch, generator)
        batch = self._photometric(batch, generator)
        return self._erase(batch, generator).squeeze(1)

    def _geometric(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        count = batch.shape[0]
        angle = _uniform(count, -1.0, 1.0, generator) * math.radians(self.max_rotation_deg)
        scale = _uniform(count, *self.scale_range, generator)
        flip = torch.where(_uniform(count, 0.0, 1.0, generator) < self.flip_probability, -1.0, 1.0)
        shift = _uniform(2 * count, -2.0, 2.0, generator).view(count, 2) * self.max_shift
        # The grid maps output to input coordinates, so the inverse zoom (1/scale) enlarges the face.
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                             torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
        return F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _photometric(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        count = batch.shape[0]
        gain = 1.0 + _uniform(count, -self.contrast, self.contrast, generator).view(count, 1, 1, 1)
        offset = _uniform(count, -self.brightness, self.brightness, generator).view(count, 1, 1, 1)
        mean = batch.mean(dim=(1, 2, 3), keepdim=True)
        return ((batch - mean) * gain + mean + offset).clamp(0.0, 1.0)

    def _erase(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        count, _, height, width = batch.shape
        area = _uniform(count, *self.erase_area, generator) * height * width
        aspect = torch.exp(_uniform(count, math.log(0.5), math.log(2.0), generator))
        box_h = torch.sqrt(area * aspect).clamp(1, height)
        box_w = torch.sqrt(area / aspect).clamp(1, width)
        top = _uniform(count, 0.0, 1.0, generator) * (height - box_h)
        left = _uniform(count, 0.0, 1.0, generator) * (width - box_w)
        rows = torch.arange(height).view(1, height, 1)
        cols = torch.arange(width).view(1, 1, width)
        inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + box_h).view(-1, 1, 1))
                  & (cols >= left.view(-1, 1, 1)) & (cols < (left + box_w).view(-1, 1, 1)))
        chosen = (_uniform(count, 0.0, 1.0, generator) < self.erase_probability).view(-1, 1, 1)
        noise = torch.rand(batch.shape, generator=generator)
        return torch.where((inside & chosen).unsqueeze(1), noise, batch)


def _uniform(count: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """``count`` uniform draws in [low, high)."""
    return low + (high - low) * torch.rand(count, generator=generator)
