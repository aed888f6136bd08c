"""FER2013-layout data: loading an ``.npz``, picking a split, FER+ vote targets, and augmenting training batches.

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

FER+ (Barsoum et al., 2016) re-labelled every FER2013 face with ten crowd
votes over ten columns (``neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt, unknown, NF``), in a file row-aligned to
``fer2013.npz`` (:func:`load_ferplus`). :func:`ferplus_targets` turns them
into targets over the model's seven FER2013 classes:

* a face FER+ did not label (``labelled`` false) is dropped;
* a face with more than :data:`MAX_UNCERTAIN_SHARE` (half) of its votes on
  ``unknown`` or ``NF`` (not a face) is dropped: most taggers read no
  emotion in it, so its few emotion votes make no target;
* ``contempt`` votes are dropped and the distribution is renormalised over
  the seven classes: the model keeps FER2013's seven outputs (the shipped
  model, the int8 graph, the expression node and every FER2013 comparison
  rely on them), and contempt, with 1.7 % of the votes and the majority
  on 216 of the 35,710 labelled faces, is too rare to learn well as an
  eighth class; a face whose emotion votes are all contempt has no target
  left and is dropped;
* the soft target is the remaining vote distribution; the majority label
  (for accuracy) is its most voted class, ties going to the first in
  FER2013 order.

These keep every face with a readable emotion, ambiguous ones included. The
FER+ authors score val and test another way (:func:`ferplus_reference_labels`,
as their reader does in its ``majority`` mode): a column's single vote is
dropped as an outlier, and a face counts only when its top column holds
more than half of the remaining votes and names an emotion, so faces the
taggers split on are left out. Their published accuracies (83.85 % for
VGG13 trained on majority labels) are on that set; ``fer-evaluate`` scores
both.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fer_perception.emotion.labels import EMOTIONS, canonical_label
from fer_perception.paths import data_dir

INPUT_SIZE = 48
"""Side of the (square, grayscale) model input in pixels, FER2013's native size."""

FERPLUS_UNCERTAIN = ("unknown", "NF")
"""FER+ vote columns that name no emotion: the taggers could not decide, or the image is not a face."""

MAX_UNCERTAIN_SHARE = 0.5
"""A FER+ face is dropped when more than this share of its votes are on :data:`FERPLUS_UNCERTAIN` columns."""

FERPLUS_RULES = {"max_uncertain_share": MAX_UNCERTAIN_SHARE, "uncertain_columns": list(FERPLUS_UNCERTAIN),
                 "unlabelled": "dropped",
                 "contempt": "votes dropped, distribution renormalised over the 7 classes (all-contempt faces dropped)",
                 "majority_ties": "first class in FER2013 order"}
"""How FER+ votes become targets (:func:`ferplus_targets`), as recorded in training and evaluation reports."""

FERPLUS_REFERENCE_CLASSES = (*EMOTIONS, "contempt")
"""The classes of :func:`ferplus_reference_labels`: FER+'s eight emotions (FER2013's seven, then contempt)."""

FERPLUS_REFERENCE_RULES = {
    "source": "microsoft/FERPlus src/ferplus.py, majority mode (its train.py scores val and test so)",
    "outliers": "a column with a single vote loses it",
    "majority": "the top column holds more than half of the remaining votes (unknown and NF included)",
    "dropped": "faces without such a majority, or whose majority is unknown or NF",
    "contempt": "kept; a model without a contempt output is counted wrong on those faces"}
"""How :func:`ferplus_reference_labels` reads FER+ votes, as recorded in evaluation reports."""


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
    arrays = _read_arrays(path, "dataset", ("images", "labels", "classes"), ("split", "split_names"))
    images, labels = arrays["images"], arrays["labels"].astype(np.int64)
    classes = tuple(str(name) for name in arrays["classes"])
    if len(images) != len(labels):
        raise DatasetError(f"dataset {path}: {len(images)} images but {len(labels)} labels")
    rows = _split_rows(arrays, path, split)
    return FaceSet(images=images[rows], labels=labels[rows], classes=classes)


def _read_arrays(path: Path, kind: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """The ``required`` and (where present) ``optional`` arrays of the ``.npz`` at ``path``, and only those (a
    caller that needs a dataset's split but not its images does not read the images); :class:`DatasetError`
    naming the ``kind`` of file and its path when it is missing, unreadable or lacks a required array."""
    if not path.is_file():
        raise DatasetError(f"{kind} file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = set(required) - set(data.files)
            if missing:
                raise DatasetError(f"{kind} {path} lacks array(s) {sorted(missing)}")
            return {name: data[name] for name in (*required, *optional) if name in data.files}
    except DatasetError:
        raise
    except Exception as error:  # np.load raises several types for damaged files
        raise DatasetError(f"cannot read {kind} {path}: {error}") from error


def _split_rows(arrays: dict, path: Path, split: str | None) -> np.ndarray | slice:
    """Which rows of the dataset ``arrays`` (read from ``path``) belong to ``split``: all when it is None."""
    if split is None:
        return slice(None)
    if "split" not in arrays:
        raise DatasetError(f"dataset {path} has no 'split' array; cannot select split {split!r}")
    names = [str(name) for name in arrays.get("split_names", np.array(["train", "val", "test"]))]
    if split not in names:
        raise DatasetError(f"dataset {path} has no split {split!r}; it has {names}")
    return arrays["split"] == names.index(split)


def default_ferplus_path() -> Path:
    """The shared FER+ votes, row-aligned to the shared ``fer2013/fer2013.npz``."""
    return data_dir() / "ferplus" / "ferplus_votes.npz"


@dataclass(frozen=True)
class FerPlusTargets:
    """FER+ targets of a sequence of faces over :data:`~fer_perception.emotion.labels.EMOTIONS` (see the module
    docstring for the rules); faces that are dropped keep their row, with ``keep`` false."""

    distributions: np.ndarray
    """float32 (N, 7): each kept face's vote distribution over the seven classes; zero for dropped faces."""
    keep: np.ndarray
    """bool (N,): whether the face has a FER+ target."""

    @property
    def majority(self) -> np.ndarray:
        """int64 (N,): each face's most voted class (index into EMOTIONS), -1 for dropped faces."""
        return np.where(self.keep, self.distributions.argmax(1), -1)

    def majority_faces(self, faces: FaceSet) -> FaceSet:
        """The kept faces of ``faces`` (the same rows as these targets) with their FER+ majority labels."""
        return FaceSet(images=faces.images[self.keep], labels=self.majority[self.keep], classes=EMOTIONS)


def ferplus_targets(votes: np.ndarray, columns: Sequence[str], labelled: np.ndarray) -> FerPlusTargets:
    """FER+ targets of faces with vote counts ``votes`` (N, len(columns)) and FER+'s ``labelled`` flags.

    ``columns`` may name the emotions in any spelling :func:`~fer_perception.emotion.labels.canonical_label`
    knows; a column that is neither one of the seven emotions nor :data:`FERPLUS_UNCERTAIN` (FER+'s
    ``contempt``) does not count towards the distribution. Raises ValueError when a column is missing.
    """
    names = [canonical_label(name) for name in columns]
    wanted = [*EMOTIONS, *(canonical_label(name) for name in FERPLUS_UNCERTAIN)]
    missing = [name for name in wanted if name not in names]
    if missing:
        raise ValueError(f"FER+ vote columns {list(columns)} lack {missing}")
    votes = np.asarray(votes, np.float64)
    emotion = votes[:, [names.index(name) for name in EMOTIONS]]
    uncertain = votes[:, [names.index(name) for name in wanted[len(EMOTIONS):]]].sum(1)
    emotion_total = emotion.sum(1)
    keep = (np.asarray(labelled, bool) & (uncertain <= MAX_UNCERTAIN_SHARE * votes.sum(1)) & (emotion_total > 0))
    distributions = np.divide(emotion, emotion_total[:, None], out=np.zeros_like(emotion), where=keep[:, None])
    return FerPlusTargets(distributions=distributions.astype(np.float32), keep=keep)


def ferplus_reference_labels(votes: np.ndarray, columns: Sequence[str], labelled: np.ndarray) -> np.ndarray:
    """Each face's FER+ majority label as the FER+ authors score val and test (:data:`FERPLUS_REFERENCE_RULES`):
    int64 (N,) indices into :data:`FERPLUS_REFERENCE_CLASSES`, -1 for a face that is left out. ``votes`` and
    ``columns`` as for :func:`ferplus_targets`; ValueError when a column is missing."""
    names = [canonical_label(name) for name in columns]
    uncertain = [canonical_label(name) for name in FERPLUS_UNCERTAIN]
    missing = [name for name in (*FERPLUS_REFERENCE_CLASSES, *uncertain) if name not in names]
    if missing:
        raise ValueError(f"FER+ vote columns {list(columns)} lack {missing}")
    votes = np.asarray(votes, np.float64)
    votes = np.where(votes > 1, votes, 0.0)
    top = votes.argmax(1)
    index_of = np.array([FERPLUS_REFERENCE_CLASSES.index(name) if name in FERPLUS_REFERENCE_CLASSES else -1
                         for name in names])
    keep = np.asarray(labelled, bool) & (votes.max(1) > 0.5 * votes.sum(1)) & (index_of[top] >= 0)
    return np.where(keep, index_of[top], -1)


def load_ferplus(path: str | Path, data_path: str | Path, split: str | None = None) -> FerPlusTargets:
    """FER+ targets of the faces of the dataset ``data_path`` (of its ``split`` when given, in the order
    :func:`load_npz` returns them) from the votes file ``path`` (arrays ``votes``, ``columns``, ``labelled``),
    whose rows are the dataset's rows. :class:`DatasetError` naming the file when it is missing, unreadable,
    lacks a column or array, or has another number of rows than the dataset."""
    return _read_votes(path, data_path, split, ferplus_targets)


def load_ferplus_reference(path: str | Path, data_path: str | Path, split: str | None = None) -> np.ndarray:
    """:func:`ferplus_reference_labels` of the faces of ``data_path`` (its ``split`` when given), from the votes
    file ``path`` row-aligned to it; errors as :func:`load_ferplus`."""
    return _read_votes(path, data_path, split, ferplus_reference_labels)


def _read_votes(path: str | Path, data_path: str | Path, split: str | None, read: Callable) -> Any:
    """``read(votes, columns, labelled)`` of the rows of the votes file ``path`` that are the faces of
    ``data_path`` (its ``split`` when given); :class:`DatasetError` naming the file when it is missing,
    unreadable, lacks a column or array, or is not row-aligned to the dataset."""
    path, data_path = Path(path), Path(data_path)
    ferplus = _read_arrays(path, "FER+ votes", ("votes", "columns", "labelled"))
    data = _read_arrays(data_path, "dataset", ("labels",), ("split", "split_names"))
    if not len(ferplus["votes"]) == len(ferplus["labelled"]) == len(data["labels"]):
        raise DatasetError(f"FER+ votes {path} ({len(ferplus['votes'])} rows) are not row-aligned to dataset "
                           f"{data_path} ({len(data['labels'])} faces)")
    rows = _split_rows(data, data_path, split)
    try:
        return read(ferplus["votes"][rows], [str(name) for name in ferplus["columns"]], ferplus["labelled"][rows])
    except ValueError as error:
        raise DatasetError(f"{path}: {error}") from error


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
