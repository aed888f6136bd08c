"""Emotion: classifier latency at batch 1 and 5 on real crops, and accuracy on FER2013's test split.

Latency is ``EmotionClassifier.predict`` end to end (crop to 48x48 gray, the
network, softmax) with one intra-op thread, as the expression node runs it,
on aligned crops of real faces (the five-face photo), for the configured
backend and for the other fast backends beside it. Accuracy is
``fer-evaluate``'s on the test split: the model as trained (flat, with flip
test-time augmentation, and coarse-to-fine from the same probabilities) and
as the configured backend runs it.
"""
from __future__ import annotations

import time

import numpy as np

from bench.figures import Figure, median_p95
from bench.frames import five_faces_640x480, tracked_faces
from fer_perception.emotion.classifier import EmotionClassifier
from fer_perception.emotion.evaluate import evaluate
from fer_perception.emotion.loading import emotion_config, model_path
from fer_perception.paths import data_dir


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


COMPARED_BACKENDS = ("onnxruntime_int8", "onnxruntime", "torch")
"""Backends measured beside the configured one."""


def configured_backend() -> str:
    return emotion_config()["classifier"]["backend"]


def latency(quick: bool) -> list[Figure]:
    """The configured backend against the goals (1 face <= 3 ms; 5 faces <= 2x that budget), the others beside."""
    crops = real_crops()
    repeats = 50 if quick else 300
    backend = configured_backend()
    note = f"{len(crops)} real crops, {repeats} interleaved runs, {backend}, 1 thread"
    one, five = _latencies(EmotionClassifier(model_path(emotion_config()), backend), crops, repeats)
    figures = [Figure("stages", "emotion classifier, 1 face, median", one, "ms", "<= 3", one <= 3, 8, note),
               Figure("stages", "emotion classifier, 5 faces, median", five, "ms", "<= 6", five <= 6, 8, note),
               Figure("stages", "emotion classifier, 5 faces / 1 face", five / one, "x", issue=8, note=note)]
    flip_one, flip_five = _latencies(EmotionClassifier(model_path(emotion_config()), backend, flip=True), crops,
                                     repeats)
    figures += [Figure("stages", "emotion classifier, flip TTA, 1 face, median", flip_one, "ms", "<= 3",
                       flip_one <= 3, 28, note),
                Figure("stages", "emotion classifier, flip TTA, 5 faces, median", flip_five, "ms", "<= 6",
                       flip_five <= 6, 28, note)]
    for other in COMPARED_BACKENDS:
        if other == backend:
            continue
        other_one, other_five = _latencies(EmotionClassifier(model_path(emotion_config()), other), crops, repeats)
        note = f"{len(crops)} real crops, {repeats} interleaved runs, 1 thread"
        figures += [Figure("stages", f"emotion classifier, {other}, 1 face, median", other_one, "ms", issue=8,
                           note=note),
                    Figure("stages", f"emotion classifier, {other}, 5 faces, median", other_five, "ms", issue=8,
                           note=note)]
    return figures


def accuracy(quick: bool) -> list[Figure]:
    path = data_dir() / "fer2013" / "fer2013.npz"
    if not path.is_file():
        raise SystemExit(f"benchmark data missing: {path}")
    limit = 800 if quick else None
    flat = evaluate(path, model_path(emotion_config()), "test", tta=False, limit=limit)
    note = f"FER2013 test split, {flat['count']} faces" + (" (quick subset)" if quick else "") + f", configured model {model_path(emotion_config()).name}"
    figures = [Figure("accuracy", "emotion accuracy, flat", 100 * flat["accuracy"], "%", ">= 70",
                      flat["accuracy"] >= 0.70, 8, note),
               Figure("accuracy", "emotion macro-F1, flat", flat["macro_f1"], "", issue=8, note=note),
               Figure("accuracy", "emotion accuracy, coarse-to-fine", 100 * flat["coarse_to_fine_accuracy"], "%",
                      issue=8, note=note)]
    backend = configured_backend()
    deployed = evaluate(path, model_path(emotion_config()), "test", tta=False, limit=limit, backend=backend)
    figures.append(Figure("accuracy", f"emotion accuracy, flat, as run by {backend}", 100 * deployed["accuracy"],
                          "%", issue=8, note=note))
    if not quick:
        flipped = evaluate(path, model_path(emotion_config()), "test", tta=True)
        figures.append(Figure("accuracy", "emotion accuracy, flat, flip TTA", 100 * flipped["accuracy"], "%",
                              issue=8, note=note))
    return figures


def run(quick: bool) -> list[Figure]:
    return latency(quick) + accuracy(quick)
