"""Emotion: classifier latency at batch 1 and 5 on real crops, and accuracy on FER2013's test split.

Latency is ``EmotionClassifier.predict`` end to end (crop to 48x48 gray, the
network, softmax) with one intra-op thread, as the expression node runs it,
on aligned crops of real faces (the five-face photo), for the configured
model and backend, for each other model ``emotion.yaml`` names (any of them
can be chosen by name, so each is held to the budget), and for the other
fast backends beside them. Accuracy is
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
from fer_perception.emotion.loading import emotion_config, model_names, model_path
from fer_perception.paths import data_dir


def real_crops() -> list[np.ndarray]:
    """Aligned crops of the five faces of multi_face.jpg (from the frame where most of them are tracked)."""
    return max((crops for _, crops in tracked_faces(five_faces_640x480(5))), key=len)


def _latencies(classifiers: dict[str, EmotionClassifier], crops: list[np.ndarray],
               repeats: int) -> dict[str, tuple[float, float]]:
    """Median milliseconds of each classifier's ``predict`` for 1 and for 5 faces, all interleaved so every
    classifier and batch size sees the same machine load (their ratios hold even when the load drifts)."""
    samples = {(name, size): [] for name in classifiers for size in (1, 5)}
    for classifier in classifiers.values():
        for _ in range(10):
            classifier.predict(crops[:1])
            classifier.predict(crops)
    for _ in range(repeats):
        for name, size in samples:
            start = time.perf_counter()
            classifiers[name].predict(crops[:size])
            samples[name, size].append(time.perf_counter() - start)
    return {name: (median_p95(samples[name, 1])[0], median_p95(samples[name, 5])[0]) for name in classifiers}


COMPARED_BACKENDS = ("onnxruntime_int8", "onnxruntime", "torch")
"""Backends measured beside the configured one."""


def configured_backend() -> str:
    return emotion_config()["classifier"]["backend"]


def latency(quick: bool) -> list[Figure]:
    """The configured model and backend against the goals (1 face <= 3 ms; 5 faces <= 2x that budget), each other
    named model with the configured backend against the same goals, the other backends beside."""
    crops = real_crops()
    repeats = 50 if quick else 300
    backend = configured_backend()
    config = emotion_config()
    configured = model_path(config)
    measured = [("", EmotionClassifier(configured, backend), True, 8),
                (", flip TTA", EmotionClassifier(configured, backend, flip=True), True, 28)]
    measured += [(f", model {name}", EmotionClassifier(model_path(config, name), backend), True, 28)
                 for name in model_names(config) if name != config["classifier"]["model"]]
    measured += [(f", {other}", EmotionClassifier(configured, other), False, 8)
                 for other in COMPARED_BACKENDS if other != backend]
    medians = _latencies({label: classifier for label, classifier, _, _ in measured}, crops, repeats)
    note = f"{len(crops)} real crops, {repeats} interleaved runs, {backend}, 1 thread"
    one, five = medians[""]
    figures = []
    for label, _, budgeted, issue in measured:
        label_one, label_five = medians[label]
        figures += [Figure("stages", f"emotion classifier{label}, 1 face, median", label_one, "ms",
                           "<= 3" if budgeted else "", label_one <= 3 if budgeted else None, issue, note),
                    Figure("stages", f"emotion classifier{label}, 5 faces, median", label_five, "ms",
                           "<= 6" if budgeted else "", label_five <= 6 if budgeted else None, issue, note)]
        if label == "":
            figures.append(Figure("stages", "emotion classifier, 5 faces / 1 face", five / one, "x", issue=8,
                                  note=note))
        elif label.startswith(", model"):
            figures.append(Figure("stages", f"emotion classifier{label} / configured model, 1 face",
                                  label_one / one, "x", issue=28, note=note))
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
