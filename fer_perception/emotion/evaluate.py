"""Scoring emotion models on a labelled face dataset (CLI ``fer-evaluate``).

For each model (``--model`` repeated: one column each, side by side) it
reports accuracy, per-class recall, macro-F1 and the expected calibration
error (:func:`expected_calibration_error`: 15 equal-width bins of top-1
confidence) against the dataset's labels and, for FER2013 (or with
``--ferplus``), against the FER+ majority labels of the same faces (seven
classes; faces FER+ gives no target are dropped, by the rules of
:mod:`fer_perception.emotion.dataset`): how a model does on the labels it
was trained on next to cleaner ones, and how far its confidence can be
trusted on each. Beside them, the FER+ figures as the FER+ authors score
val and test (:func:`ferplus_reference_metrics`, only faces with a clear
majority; what their published accuracies are measured on). A model named
in ``emotion.yaml`` is scored at its temperature there (the probabilities
the expression stage reads; 1 for a model file), which leaves accuracy as
it is and moves the ECE.

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
from fer_perception.emotion.dataset import (FERPLUS_REFERENCE_CLASSES, FERPLUS_REFERENCE_RULES, FERPLUS_RULES,
                                            DatasetError, FaceSet, default_ferplus_path, load_ferplus,
                                            load_ferplus_reference, load_npz, normalise)
from fer_perception.emotion.fusion import coarse_to_fine_label, temperature_scaled
from fer_perception.emotion.labels import EMOTIONS, canonical_label
from fer_perception.emotion.loading import (MODEL_SUFFIX, UnknownEmotionModelError, emotion_config, model_names,
                                            model_path, model_temperature)
from fer_perception.types import EMOTION_LABELS

ECE_BINS = 15
"""Equal-width bins of top-1 confidence over [0, 1] in :func:`expected_calibration_error` (Guo et al.'s 15)."""

FER2013_FILE = "fer2013.npz"
"""Name of the dataset FER+ votes are row-aligned to: ``fer-evaluate`` scores FER+ on it by default."""


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


def expected_calibration_error(probabilities: np.ndarray, true: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top-1 predictions (Guo et al., 2017): how far the model's confidence is
    from how often it is right.

    Each face's confidence is its top probability; faces go into ``bins`` equal-width confidence bins (bin b
    holds [b/bins, (b+1)/bins), the last one 1 too), and the ECE is the mean over the bins, weighted by their
    share of the faces, of |accuracy - mean confidence| within the bin. 0: in every bin the model is right as
    often as it says; a model that says 0.9 on every face and is right on 70 % of them scores 0.2.
    """
    if not len(true):
        return 0.0
    confidence = probabilities.max(1)
    correct = (probabilities.argmax(1) == true).astype(np.float64)
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    gaps = np.bincount(index, correct, bins) - np.bincount(index, confidence, bins)
    return float(np.abs(gaps).sum() / len(true))


def probability_metrics(true: np.ndarray, probabilities: np.ndarray, labels: list[str] | tuple[str, ...]) -> dict:
    """:func:`classification_metrics` of the top-1 predictions of ``probabilities`` (N, C), with their ECE."""
    predicted = probabilities.argmax(1) if len(probabilities) else np.zeros(0, np.int64)
    return {**classification_metrics(true, predicted, labels),
            "ece": expected_calibration_error(probabilities, true), "ece_bins": ECE_BINS}


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


def evaluate(data_path: Path, model_path: Path, split: str | None, tta: bool, limit: int | None = None,
             backend: str | None = None, ferplus: Path | None = None, temperature: float = 1.0) -> dict:
    """Metrics of the model on the dataset (one split of it when given; its first ``limit`` faces when
    given), its probabilities recalibrated by ``temperature``, plus what was excluded and why. The model runs
    in torch as trained, or, with ``backend``, as
    :class:`~fer_perception.emotion.classifier.EmotionClassifier` runs it in the expression node. With
    ``ferplus`` (FER+ votes row-aligned to the dataset), also the metrics of the same predictions against the
    FER+ majority labels, under ``ferplus`` (:func:`ferplus_metrics`), and against those of the FER+ authors'
    protocol, under ``ferplus_reference`` (:func:`ferplus_reference_metrics`)."""
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
    probabilities = temperature_scaled(
        predict_probabilities(classify, to_model_input(faces.images, spec.input_size), tta=tta), temperature)
    metrics = probability_metrics(targets[keep], probabilities[keep], spec.labels)
    excluded = {name: int((faces.labels == faces.classes.index(name)).sum()) for name in unknown}
    result = {"data": str(data_path), "split": split, "model": str(model_path),
              "backend": backend or "torch (as trained)", "tta": tta, "temperature": temperature,
              "excluded_classes": excluded, **metrics}
    if tuple(spec.labels) == EMOTION_LABELS and keep.any():
        cascade = np.array([coarse_to_fine_label(p) for p in probabilities[keep]])
        result["coarse_to_fine_accuracy"] = float((cascade == targets[keep]).mean())
    if ferplus is not None:
        result["ferplus"] = ferplus_metrics(ferplus, data_path, split, limit, probabilities, spec.labels)
        result["ferplus_reference"] = ferplus_reference_metrics(ferplus, data_path, split, limit, probabilities,
                                                                spec.labels)
    return result


def _majority_metrics(labels: np.ndarray, classes: tuple[str, ...], probabilities: np.ndarray,
                     model_labels: tuple[str, ...]) -> tuple[dict, dict[str, int]]:
    """:func:`probability_metrics` of ``probabilities`` against ``labels`` (indices into ``classes``, -1 for a face
    without one) over the faces of the classes the model has, and how many labelled faces each class it lacks
    has."""
    keep = labels >= 0
    mapping, lacking = match_classes(classes, model_labels)
    true = mapping[labels[keep]]
    known = true >= 0
    return (probability_metrics(true[known], probabilities[keep][known], model_labels),
            {name: int((labels == classes.index(name)).sum()) for name in lacking})


def ferplus_metrics(path: Path, data_path: Path, split: str | None, limit: int | None, probabilities: np.ndarray,
                    model_labels: tuple[str, ...]) -> dict:
    """Metrics of ``probabilities`` (of the faces of ``data_path``, its ``split`` when given, its first ``limit``
    when given) against the FER+ majority labels of the votes file ``path`` row-aligned to it: faces FER+ gives
    no target are dropped (counted under ``dropped``), those whose majority class the model lacks excluded."""
    majority = load_ferplus(path, data_path, split).majority[:limit]
    metrics, lacking = _majority_metrics(majority, EMOTIONS, probabilities, model_labels)
    return {"votes": str(path), "rules": FERPLUS_RULES, "dropped": int((majority < 0).sum()),
            "excluded_classes": lacking, **metrics}


def ferplus_reference_metrics(path: Path, data_path: Path, split: str | None, limit: int | None,
                              probabilities: np.ndarray, model_labels: tuple[str, ...]) -> dict:
    """Metrics of ``probabilities`` (faces as for :func:`ferplus_metrics`) against the FER+ majority labels as
    the FER+ authors score val and test (:func:`~fer_perception.emotion.dataset.ferplus_reference_labels`).

    ``accuracy`` and ``count`` are over every face the protocol keeps, those of a class the model lacks
    (contempt, for the seven-class models) counted wrong, so the figure compares with the authors' eight-class
    ones; ``accuracy_known_classes``, recall, macro-F1 and ECE are over the faces of the model's classes.
    """
    labels = load_ferplus_reference(path, data_path, split)[:limit]
    metrics, lacking = _majority_metrics(labels, FERPLUS_REFERENCE_CLASSES, probabilities, model_labels)
    kept = int((labels >= 0).sum())
    hits = round(metrics["accuracy"] * metrics["count"])
    return {"votes": str(path), "rules": FERPLUS_REFERENCE_RULES, "dropped": len(labels) - kept, **metrics,
            "counted_wrong": lacking, "count": kept, "accuracy": hits / max(kept, 1),
            "accuracy_known_classes": metrics["accuracy"]}


REPORT_ROWS = (("faces", "count", "{}"), ("accuracy", "accuracy", "{:.4f}"), ("macro-F1", "macro_f1", "{:.4f}"),
               (f"ECE ({ECE_BINS} bins, top-1)", "ece", "{:.4f}"),
               ("coarse-to-fine accuracy", "coarse_to_fine_accuracy", "{:.4f}"))
"""(row name, metric key, format) of the summary rows of :func:`format_report`; per-class recall follows.
Coarse-to-fine: neutral/happy/surprise/negative first, then within negative
(:func:`~fer_perception.emotion.fusion.coarse_to_fine_label`)."""


def report_columns(results: list[dict]) -> list[tuple[str, dict]]:
    """(heading, metrics) of each column of the report: per model (named, or numbered when names repeat), the
    dataset's labels (headed by the file's name) and, where scored, the FER+ majority labels."""
    names = [result.get("name") for result in results]
    named = None not in names and len(set(names)) == len(names)
    columns = []
    for number, result in enumerate(results, 1):
        tag = "" if len(results) == 1 else f"{result['name']}:" if named else f"[{number}]"
        columns.append((f"{tag} {Path(result['data']).stem}".strip(), result))
        if "ferplus" in result:
            columns.append((f"{tag} FER+".strip(), result["ferplus"]))
        if "ferplus_reference" in result:
            columns.append((f"{tag} FER+ref".strip(), result["ferplus_reference"]))
    return columns


def format_report(results: list[dict]) -> str:
    """The figures of :func:`evaluate` results (one per model, same data) as a table: one column per model and
    label set, side by side; a figure a column lacks (a class without faces) is ``-``."""
    columns = report_columns(results)
    labels = list(dict.fromkeys(label for _, metrics in columns for label in metrics["labels"]))
    rows = [(name, [pattern.format(metrics[key]) if key in metrics else "-" for _, metrics in columns])
            for name, key, pattern in REPORT_ROWS if any(key in metrics for _, metrics in columns)]
    rows += [(f"recall {label}", [f"{metrics['recall'][label]:.4f}" if metrics["support"].get(label) else "-"
                                  for _, metrics in columns]) for label in labels]
    name_width = max(len(name) for name, _ in rows)
    width = max(10, *(len(heading) + 2 for heading, _ in columns))
    lines = [" " * name_width + "".join(f"{heading:>{width}}" for heading, _ in columns)]
    lines += [f"{name:<{name_width}}" + "".join(f"{value:>{width}}" for value in values) for name, values in rows]
    return "\n".join(lines)


def format_confusion(heading: str, metrics: dict) -> str:
    """The confusion matrix of ``metrics`` as plain text, under ``heading``."""
    labels = metrics["labels"]
    width = max(len(label) for label in labels) + 1
    lines = [f"confusion matrix, {heading} (rows true, columns predicted):",
             " " * width + "".join(f"{label[:8]:>9}" for label in labels)]
    lines += [f"{label:<{width}}" + "".join(f"{value:>9}" for value in row)
              for label, row in zip(labels, metrics["confusion"])]
    return "\n".join(lines)


def _has_splits(path: Path) -> bool:
    """Whether the ``.npz`` has a ``split`` array (False when unreadable: loading then reports the problem)."""
    try:
        with np.load(path, allow_pickle=False) as content:
            return "split" in content.files
    except (OSError, ValueError):
        return False


def chosen_models(choices: list[str] | None) -> list[tuple[str, Path, float]]:
    """``(name, file, temperature)`` of each ``--model`` (a name from ``emotion.yaml``, with its temperature there,
    or a model file, with 1); by default every model ``emotion.yaml`` lists, so the shipped models are compared
    side by side."""
    config = emotion_config()
    names = model_names(config)

    def chosen(choice: str) -> tuple[str, Path, float]:
        if choice in names:
            return choice, model_path(config, choice), model_temperature(config, choice)
        if Path(choice).is_file() or choice.endswith(MODEL_SUFFIX):
            return Path(choice).stem, Path(choice), 1.0
        raise UnknownEmotionModelError(f"unknown model {choice!r}: neither a model named in emotion.yaml "
                                       f"({', '.join(names)}) nor a file")
    return [chosen(choice) for choice in choices or names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fer-evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help=".npz with images, labels, classes (optionally split, split_names)")
    parser.add_argument("--split", default="test",
                        help="split to score when the file has splits (default: %(default)s); ignored without them")
    parser.add_argument("--model", action="append", default=None, metavar="NAME_OR_FILE",
                        help="a model named in config/emotion.yaml, or a model file; repeat it to compare several "
                             "side by side (default: every model emotion.yaml names)")
    votes = parser.add_mutually_exclusive_group()
    votes.add_argument("--ferplus", type=Path, default=None, metavar="VOTES",
                       help="FER+ votes row-aligned to DATA: also score against their majority labels "
                            f"(default: {default_ferplus_path()} when DATA is a {FER2013_FILE})")
    votes.add_argument("--no-ferplus", action="store_true", help=f"do not score FER+, not even on {FER2013_FILE}")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the results as JSON here (with several models: {\"models\": [...]})")
    parser.add_argument("--backend", default=None,
                        help="run the model as the expression node does, with this backend of "
                             "fer_perception.emotion.classifier.BACKENDS (default: torch as trained)")
    parser.add_argument("--tta", action="store_true", help="average with the mirrored face (test-time augmentation)")
    args = parser.parse_args(argv)
    ferplus = args.ferplus
    if ferplus is None and not args.no_ferplus and args.data.name == FER2013_FILE:
        ferplus = default_ferplus_path()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    try:
        split = args.split if _has_splits(args.data) else None
        results = [{"name": name, **evaluate(args.data, path, split, args.tta, backend=args.backend, ferplus=ferplus,
                                             temperature=temperature)}
                   for name, path, temperature in chosen_models(args.model)]
    except (DatasetError, ModelLoadError, ValueError) as error:
        print(f"fer-evaluate: {error}", file=sys.stderr)
        return 2
    several = len(results) > 1
    print(f"{args.data} split {split or '(all)'}{', flip TTA' if args.tta else ''}")
    for result in results:
        print(f"model {result['name']} ({result['model']}), {result['backend']}"
              + (f", temperature {result['temperature']:.2f} (emotion.yaml)" if result["temperature"] != 1.0 else ""))
        for name, count in result["excluded_classes"].items():
            print(f"  class {name!r} ({count} faces) is not one of the model's classes; excluded")
    if ferplus is not None:
        print(f"FER+ majority labels from {ferplus}: {results[0]['ferplus']['dropped']} faces dropped "
              "(unlabelled, mostly unknown/NF votes, or only contempt)")
        reference = results[0]["ferplus_reference"]
        wrong = ", ".join(f"{count} {name}" for name, count in reference["counted_wrong"].items() if count)
        print(f"FER+ref, the FER+ authors' protocol (single votes dropped, a majority of more than half): "
              f"{reference['dropped']} faces dropped" + (f"; counted wrong, a class the model lacks: {wrong}"
                                                         if wrong else ""))
    print("\n" + format_report(results))
    if not several:
        for heading, metrics in report_columns(results):
            print("\n" + format_confusion(heading, metrics))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results[0] if not several else {"models": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
