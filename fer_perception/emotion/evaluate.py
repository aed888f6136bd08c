"""Scoring an emotion model on a labelled face dataset (CLI ``fer-evaluate``).

Also provides the batch prediction and the metrics (accuracy, per-class
recall, macro-F1, confusion matrix) the training report uses, so training and
evaluation measure the same way.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from fer_perception.emotion.checkpoint import ModelLoadError, load_model
from fer_perception.emotion.dataset import DatasetError, FaceSet, load_npz, normalise
from fer_perception.emotion.fusion import coarse_to_fine_label
from fer_perception.emotion.labels import canonical_label
from fer_perception.paths import share_dir
from fer_perception.types import EMOTION_LABELS


Classify = Callable[[np.ndarray], np.ndarray]
"""Probabilities (N, C) of uint8 (N, S, S) model-input faces."""


def network_probabilities(network: nn.Module, mean: float, std: float) -> Classify:
    """A torch network (in eval mode, on any device) with its input normalisation as a :data:`Classify`."""
    network.eval()
    device = next(network.parameters()).device

    def classify(faces: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            inputs = normalise(torch.from_numpy(faces), mean, std).to(device)
            return torch.softmax(network(inputs), dim=1).cpu().numpy()
    return classify


def network_accuracy(network: nn.Module, mean: float, std: float, faces: FaceSet) -> float:
    """Share of ``faces`` (model-input images, labels in the network's order) the torch network classifies right."""
    probabilities = predict_probabilities(network_probabilities(network, mean, std), faces.images)
    return float((probabilities.argmax(1) == faces.labels).mean())


def predict_probabilities(classify: Classify, faces: np.ndarray, tta: bool = False,
                          batch_size: int = 512) -> np.ndarray:
    """Class probabilities (N, C) of uint8 (N, S, S) model-input faces in batches; ``tta`` averages with the
    mirror image."""
    chunks = []
    for start in range(0, len(faces), batch_size):
        batch = faces[start:start + batch_size]
        probabilities = classify(batch)
        if tta:
            probabilities = (probabilities + classify(np.ascontiguousarray(batch[:, :, ::-1]))) / 2
        chunks.append(probabilities)
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def classification_metrics(true: np.ndarray, predicted: np.ndarray, labels: list[str] | tuple[str, ...]) -> dict:
    """Accuracy, per-class recall, precision and F1, macro-F1 and confusion matrix (rows true, columns predicted)."""
    count = len(labels)
    confusion = np.zeros((count, count), np.int64)
    np.add.at(confusion, (true, predicted), 1)
    support = confusion.sum(axis=1)
    predicted_total = confusion.sum(axis=0)
    hits = np.diag(confusion)
    recall = np.divide(hits, support, out=np.zeros(count), where=support > 0)
    precision = np.divide(hits, predicted_total, out=np.zeros(count), where=predicted_total > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(count), where=precision + recall > 0)
    present = support > 0
    return {
        "count": int(len(true)),
        "accuracy": float(hits.sum() / max(len(true), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "labels": list(labels),
        "support": {label: int(value) for label, value in zip(labels, support)},
        "recall": {label: float(value) for label, value in zip(labels, recall)},
        "precision": {label: float(value) for label, value in zip(labels, precision)},
        "f1": {label: float(value) for label, value in zip(labels, f1)},
        "confusion": confusion.tolist(),
    }


def to_model_input(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, size, size) gray faces from uint8 gray (N, H, W) or RGB (N, H, W, 3) images of any size.

    The whole image is taken to be a face framed like FER2013 (as in datasets
    distributed in this layout); it is converted to gray (ITU-R 601 luma) and
    resized, with area averaging when shrinking and bilinear when enlarging.
    """
    out = np.empty((len(images), size, size), np.uint8)
    for index, image in enumerate(images):
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if image.shape != (size, size):
            shrink = image.shape[0] > size or image.shape[1] > size
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out[index] = image
    return out


def match_classes(dataset_classes: tuple[str, ...], model_labels: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Model class index of each dataset class (-1 when the model lacks it), and the dataset classes it lacks.

    Dataset names are compared after :func:`~fer_perception.emotion.labels.canonical_label`
    (case, and spellings such as ``happiness``).
    """
    mapping = np.full(len(dataset_classes), -1, np.int64)
    unknown = []
    for index, name in enumerate(dataset_classes):
        label = canonical_label(name)
        if label in model_labels:
            mapping[index] = model_labels.index(label)
        else:
            unknown.append(name)
    return mapping, unknown


def format_metrics(metrics: dict) -> str:
    """Accuracy, macro-F1, per-class recall and the confusion matrix as plain text."""
    labels = metrics["labels"]
    width = max(len(label) for label in labels) + 1
    lines = [f"faces: {metrics['count']}", f"accuracy: {metrics['accuracy']:.4f}",
             f"macro-F1: {metrics['macro_f1']:.4f}", "", f"{'class':<{width}} recall  support"]
    lines += [f"{label:<{width}} {metrics['recall'][label]:.4f}  {metrics['support'][label]}" for label in labels]
    lines += ["", "confusion matrix (rows true, columns predicted):",
              " " * width + "".join(f"{label[:8]:>9}" for label in labels)]
    lines += [f"{label:<{width}}" + "".join(f"{value:>9}" for value in row)
              for label, row in zip(labels, metrics["confusion"])]
    return "\n".join(lines)


def evaluate(data_path: Path, model_path: Path, split: str | None, tta: bool, limit: int | None = None,
             backend: str | None = None) -> dict:
    """Metrics of the model on the dataset (one split of it when given; its first ``limit`` faces when
    given), plus what was excluded and why. The model runs in torch as trained, or, with ``backend``, as
    :class:`~fer_perception.emotion.classifier.EmotionClassifier` runs it in the expression node."""
    network, spec = load_model(model_path)
    if backend is None:
        classify = network_probabilities(network, spec.mean, spec.std)
    else:
        from fer_perception.emotion.classifier import EmotionClassifier

        classify = EmotionClassifier(model_path, backend).predict_model_inputs
    faces = load_npz(data_path, split)
    if limit is not None:
        faces = FaceSet(faces.images[:limit], faces.labels[:limit], faces.classes)
    mapping, unknown = match_classes(faces.classes, spec.labels)
    targets = mapping[faces.labels]
    keep = targets >= 0
    inputs = to_model_input(faces.images[keep], spec.input_size)
    probabilities = predict_probabilities(classify, inputs, tta=tta)
    predicted = probabilities.argmax(1) if len(inputs) else np.zeros(0, np.int64)
    metrics = classification_metrics(targets[keep], predicted, spec.labels)
    excluded = {name: int((faces.labels == faces.classes.index(name)).sum()) for name in unknown}
    result = {"data": str(data_path), "split": split, "model": str(model_path),
              "backend": backend or "torch (as trained)", "tta": tta,
              "excluded_classes": excluded, **metrics}
    if tuple(spec.labels) == EMOTION_LABELS and len(inputs):
        cascade = np.array([coarse_to_fine_label(p) for p in probabilities])
        result["coarse_to_fine_accuracy"] = float((cascade == targets[keep]).mean())
    return result


def _has_splits(path: Path) -> bool:
    """Whether the ``.npz`` has a ``split`` array (False when unreadable: loading then reports the problem)."""
    try:
        with np.load(path, allow_pickle=False) as content:
            return "split" in content.files
    except (OSError, ValueError):
        return False


def default_model_path() -> Path:
    """The shipped model: ``models/emotion_fer2013.pt`` of the package."""
    return share_dir() / "models" / "emotion_fer2013.pt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fer-evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help=".npz with images, labels, classes (optionally split, split_names)")
    parser.add_argument("--split", default="test",
                        help="split to score when the file has splits (default: %(default)s); ignored without them")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped models/emotion_fer2013.pt)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--backend", default=None,
                        help="run the model as the expression node does, with this backend of "
                             "fer_perception.emotion.classifier.BACKENDS (default: torch as trained)")
    parser.add_argument("--tta", action="store_true", help="average with the mirrored face (test-time augmentation)")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    try:
        split = args.split if _has_splits(args.data) else None
        result = evaluate(args.data, args.model or default_model_path(), split, args.tta, backend=args.backend)
    except (DatasetError, ModelLoadError, ValueError) as error:
        print(f"fer-evaluate: {error}", file=sys.stderr)
        return 2
    for name, count in result["excluded_classes"].items():
        print(f"class {name!r} ({count} faces) is not one of the model's classes; excluded")
    print(f"{result['data']} split {result['split'] or '(all)'}, model {result['model']}, {result['backend']}"
          f"{', flip TTA' if args.tta else ''}")
    print(format_metrics(result))
    if "coarse_to_fine_accuracy" in result:
        print(f"\ncoarse-to-fine (neutral/happy/surprise/negative, then within negative) accuracy: "
              f"{result['coarse_to_fine_accuracy']:.4f} (flat: {result['accuracy']:.4f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
