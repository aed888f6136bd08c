"""Emotion: classifier latency at batch 1 and 5 on real crops, and accuracy on FER2013's test split.

Latency is ``EmotionClassifier.predict`` end to end (crop to 48x48 gray, the
network, softmax) with one intra-op thread, as the expression node runs it,
on aligned crops of real faces (the five-face photo), for the configured
backend and for TorchScript beside it. Accuracy is
``fer-evaluate``'s on the test split: flat, with flip test-time augmentation,
and coarse-to-fine from the same probabilities.
"""
from __future__ import annotations

import time

import numpy as np

from bench.figures import Figure, median_p95
from bench.frames import five_faces_640x480, tracked_faces
from fer_perception.emotion.classifier import EmotionClassifier
from fer_perception.emotion.evaluate import default_model_path, evaluate
from fer_perception.expression_pipeline import load_yaml
from fer_perception.paths import config_path, data_dir


def real_crops() -> list[np.ndarray]:
    """Aligned crops of the five faces of multi_face.jpg (from the frame where most of them are tracked)."""
    return max((crops for _, crops in tracked_faces(five_faces_640x480(5))), key=len)


def _latencies(classifier: EmotionClassifier, crops: list[np.ndarray], repeats: int) -> tuple[float, float]:
    """Median milliseconds of ``predict`` for 1 and for 5 faces, interleaved so both see the same machine load."""
    samples: dict[int, list[float]] = {1: [], 5: []}
    for _ in range(10):
        classifier.predict(crops[:1])
        classifier.predict(crops)
    for _ in range(repeats):
        for size in samples:
            start = time.perf_counter()
            classifier.predict(crops[:size])
            samples[size].append(time.perf_counter() - start)
    return median_p95(samples[1])[0], median_p95(samples[5])[0]


def latency(quick: bool) -> list[Figure]:
    """The configured backend against the goals (1 face <= 3 ms; 5 faces <= 2x that budget), TorchScript beside it."""
    crops = real_crops()
    repeats = 50 if quick else 300
    backend = load_yaml(config_path("emotion.yaml"))["classifier"]["backend"]
    note = f"{len(crops)} real crops, {repeats} interleaved runs, {backend}, 1 thread"
    one, five = _latencies(EmotionClassifier(default_model_path(), backend), crops, repeats)
    figures = [Figure("stages", "emotion classifier, 1 face, median", one, "ms", "<= 3", one <= 3, 8, note),
               Figure("stages", "emotion classifier, 5 faces, median", five, "ms", "<= 6", five <= 6, 8, note),
               Figure("stages", "emotion classifier, 5 faces / 1 face", five / one, "x", issue=8, note=note)]
    if backend != "torch":
        torch_one, torch_five = _latencies(EmotionClassifier(default_model_path(), "torch"), crops, repeats)
        note = f"{len(crops)} real crops, {repeats} interleaved runs, TorchScript, 1 thread"
        figures += [Figure("stages", "emotion classifier, TorchScript, 1 face, median", torch_one, "ms", issue=8,
                           note=note),
                    Figure("stages", "emotion classifier, TorchScript, 5 faces, median", torch_five, "ms", issue=8,
                           note=note)]
    return figures


def accuracy(quick: bool) -> list[Figure]:
    path = data_dir() / "fer2013" / "fer2013.npz"
    if not path.is_file():
        raise SystemExit(f"benchmark data missing: {path}")
    limit = 800 if quick else None
    flat = evaluate(path, default_model_path(), "test", tta=False, limit=limit)
    note = f"FER2013 test split, {flat['count']} faces" + (" (quick subset)" if quick else "") + ", shipped model"
    figures = [Figure("accuracy", "emotion accuracy, flat", 100 * flat["accuracy"], "%", ">= 70",
                      flat["accuracy"] >= 0.70, 8, note),
               Figure("accuracy", "emotion macro-F1, flat", flat["macro_f1"], "", issue=8, note=note),
               Figure("accuracy", "emotion accuracy, coarse-to-fine", 100 * flat["coarse_to_fine_accuracy"], "%",
                      issue=8, note=note)]
    if not quick:
        flipped = evaluate(path, default_model_path(), "test", tta=True)
        figures.append(Figure("accuracy", "emotion accuracy, flat, flip TTA", 100 * flipped["accuracy"], "%",
                              issue=8, note=note))
    return figures


def run(quick: bool) -> list[Figure]:
    return latency(quick) + accuracy(quick)
