"""Section 5: what the label smoothing removes (spurious flips) and what it costs (lag), on real faces.

Two streams, both through the core's per-track smoothers (``TrackState``,
configured from ``config/expression.yaml``):

* **Held faces**: FER2013 test faces (the first N, unselected), each held for
  ``HOLD_S`` seconds at 30 fps with the frame-to-frame jitter a live crop of a
  still person has (sub-pixel shift, scale, roll, sensor noise), classified by
  the shipped model frame by frame. Within a hold the true label does not
  change, so every flip but the first change to the hold's majority label is
  spurious; where two consecutive holds differ, the smoothed label's arrival at
  the new label after the raw label's is the lag the smoothing adds.
* **Real clips** (``single_face.mp4``, ``noface_face.mov``): the full pipeline
  (front end, AUs, fused emotion). The raw labels on these clips change only
  at the two genuine expression changes of each clip, so flips per minute
  there measure the smoothing's lag, not flicker; they are reported with
  the label lag at each transition.

The probability lag is the shift that best aligns smoothed with raw
probability traces of the clips (maximum cross-correlation).
"""
from __future__ import annotations

import itertools

import cv2
import numpy as np

from bench.figures import Figure
from bench.frames import media
from fer_perception.emotion.classifier import EmotionClassifier
from fer_perception.emotion.dataset import load_npz
from fer_perception.emotion.loading import emotion_config, load_emotion_model, model_path
from fer_perception.events import EventConfig
from fer_perception.expression_pipeline import SmoothingConfig, TrackState, load_yaml, pipeline_from_config
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig
from fer_perception.paths import config_path, data_dir

CLIPS = ("single_face.mp4", "noface_face.mov")
MAX_LAG_FRAMES = 30
HOLD_S = 2.0
HOLD_FPS = 30.0
JITTER = {"shift_px": 1.0, "scale": 0.02, "roll_deg": 2.0, "noise": 3.0}
"""Per-frame jitter of a held 48-pixel face: uniform shift, relative scale and roll; Gaussian noise (grey levels)."""


def clip_traces(clip: str) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frame rate, raw and smoothed probabilities, raw and smoothed labels of the clip's face, frame by frame."""
    capture = cv2.VideoCapture(str(media(clip)))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    front_end = FaceFrontEnd(FaceFrontEndConfig(deterministic_ids=True))
    pipeline = pipeline_from_config(load_emotion_model(emotion_config(), lambda _: None))
    raw, smooth, labels, smooth_labels = [], [], [], []
    index = 0
    while (result := capture.read())[0]:
        rgb = cv2.cvtColor(result[1], cv2.COLOR_BGR2RGB)
        frame = front_end.process(rgb, round(index * 1e9 / fps))
        crops = [front_end.crop(rgb, f) for f in frame.faces] if pipeline.needs_crops else None
        for expression in pipeline.process(frame, crops).expressions:
            if expression.emotion is not None:
                raw.append(expression.emotion)
                smooth.append(expression.emotion_smoothed)
                labels.append(expression.label)
                smooth_labels.append(expression.label_smoothed)
        index += 1
    front_end.close()
    return fps, np.array(raw), np.array(smooth), np.array(labels), np.array(smooth_labels)


def flips(labels: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(labels))) if len(labels) > 1 else 0


def best_lag(raw: np.ndarray, smooth: np.ndarray) -> int:
    """Frames by which ``smooth`` trails ``raw`` (summed correlation over classes)."""
    raw = raw - raw.mean(axis=0)
    smooth = smooth - smooth.mean(axis=0)
    scores = [float((raw[: len(raw) - lag] * smooth[lag:]).sum()) for lag in range(min(MAX_LAG_FRAMES, len(raw) - 1))]
    return int(np.argmax(scores))


def transition_lags(labels: np.ndarray, smooth_labels: np.ndarray) -> list[int]:
    """Frames from each raw change to a label until the smoothed label arrives at it (raw changes that the
    smoothed label never follows, or that the raw label leaves before it does, are skipped)."""
    lags = []
    for index in np.flatnonzero(np.diff(labels)) + 1:
        target = labels[index]
        if smooth_labels[index - 1] == target:
            continue
        following = np.flatnonzero(smooth_labels[index:] == target)
        if len(following) and np.all(labels[index:index + following[0] + 1] == target):
            lags.append(int(following[0]))
    return lags


def jittered(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One frame of a held face: the face moved, scaled and rolled a little, with sensor noise."""
    side = face.shape[0]
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), rng.uniform(-1, 1) * JITTER["roll_deg"],
                                     1 + rng.uniform(-1, 1) * JITTER["scale"])
    matrix[:, 2] += rng.uniform(-1, 1, 2) * JITTER["shift_px"]
    moved = cv2.warpAffine(face, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.clip(moved + rng.normal(0, JITTER["noise"], moved.shape), 0, 255).astype(np.uint8)


def held_face_probabilities(count: int, seed: int = 0) -> np.ndarray:
    """(count, frames per hold, classes) raw probabilities of the first ``count`` FER2013 test faces, held."""
    path = data_dir() / "fer2013" / "fer2013.npz"
    if not path.is_file():
        raise SystemExit(f"benchmark data missing: {path}")
    faces = load_npz(path, "test").images[:count]
    config = emotion_config()
    classifier = EmotionClassifier(model_path(config), config["classifier"]["backend"])
    rng = np.random.default_rng(seed)
    frames = round(HOLD_S * HOLD_FPS)
    return np.stack([classifier.predict_model_inputs(np.stack([jittered(face, rng) for _ in range(frames)]))
                     for face in faces])


def smoothed_labels(probabilities: np.ndarray, expression_config: dict, fps: float) -> np.ndarray:
    """Raw probabilities (frames, classes) of one track through the core's smoothers, configured from
    ``expression_config`` (``expression.yaml``); the smoothed label per frame."""
    track = TrackState("bench", SmoothingConfig(**expression_config["smoothing"]),
                       EventConfig.from_dict(expression_config["events"]), itertools.count())
    return np.array([track.label.update(track.smooth_emotion(p, index / fps, 1.0), index / fps)
                     for index, p in enumerate(probabilities)])


def _hold_changes(stream: np.ndarray, hold: int, per_hold: int, majority: int) -> tuple[int, int | None]:
    """Spurious changes of one label stream within a hold (the change from the previous frame included), and the
    frame of the genuine one: the first change to the hold's majority label (None if there is none)."""
    window = stream[hold * per_hold:(hold + 1) * per_hold]
    before = stream[hold * per_hold - 1] if hold else stream[0]
    changes = np.flatnonzero(np.diff(np.concatenate([[before], window])))
    genuine = next((int(c) for c in changes if window[c] == majority), None)
    return len(changes) - (genuine is not None), genuine


def hold_statistics(labels: np.ndarray, smooth_labels: np.ndarray, holds: int) -> tuple[int, int, list[int]]:
    """Spurious flips (raw, smoothed) and the smoothed label's lag in frames at each change of the held face's
    (majority raw) label; ``labels`` are the raw labels of all holds in sequence."""
    per_hold = len(labels) // holds
    raw_spurious = smooth_spurious = 0
    lags = []
    previous_majority = None
    for hold in range(holds):
        majority = int(np.bincount(labels[hold * per_hold:(hold + 1) * per_hold]).argmax())
        raw_extra, raw_arrival = _hold_changes(labels, hold, per_hold, majority)
        smooth_extra, smooth_arrival = _hold_changes(smooth_labels, hold, per_hold, majority)
        raw_spurious += raw_extra
        smooth_spurious += smooth_extra
        changed = previous_majority is not None and majority != previous_majority
        if changed and None not in (raw_arrival, smooth_arrival):
            lags.append(smooth_arrival - raw_arrival)
        previous_majority = majority
    return raw_spurious, smooth_spurious, lags


def held_faces(quick: bool) -> list[Figure]:
    count = 60 if quick else 300
    probabilities = held_face_probabilities(count)
    stream = probabilities.reshape(-1, probabilities.shape[-1])
    smooth_labels = smoothed_labels(stream, load_yaml(config_path("expression.yaml")), HOLD_FPS)
    raw_spurious, smooth_spurious, lags = hold_statistics(stream.argmax(1), smooth_labels, count)
    minutes = len(stream) / HOLD_FPS / 60
    ratio = raw_spurious / smooth_spurious if smooth_spurious else float("inf")
    lag_ms = float(np.mean(lags)) * 1000 / HOLD_FPS if lags else None
    note = (f"{count} FER2013 test faces held {HOLD_S:g} s each at {HOLD_FPS:g} fps with live-crop jitter "
            f"{JITTER}, shipped model, {len(lags)} label changes")
    return [Figure("smoothing", "held faces: spurious label flips per minute, raw", raw_spurious / minutes, "/min",
                   issue=4, note=note),
            Figure("smoothing", "held faces: spurious label flips per minute, smoothed", smooth_spurious / minutes,
                   "/min", issue=4, note=note),
            Figure("smoothing", "held faces: spurious flip reduction raw / smoothed", ratio, "x", ">= 5", ratio >= 5, 4,
                   note),
            Figure("smoothing", "held faces: label lag added by smoothing, mean", lag_ms, "ms", "<= 150",
                   lag_ms is not None and lag_ms <= 150, 4, note)]


def real_clips() -> list[Figure]:
    raw_flips = smooth_flips = 0
    minutes = 0.0
    probability_lags_ms, label_lags_ms = [], []
    for clip in CLIPS:
        fps, raw, smooth, labels, smooth_labels = clip_traces(clip)
        raw_flips += flips(labels)
        smooth_flips += flips(smooth_labels)
        minutes += len(labels) / fps / 60
        if len(raw) > MAX_LAG_FRAMES:
            probability_lags_ms.append(best_lag(raw, smooth) * 1000 / fps)
        label_lags_ms += [lag * 1000 / fps for lag in transition_lags(labels, smooth_labels)]
    note = f"clips {', '.join(CLIPS)}, {minutes * 60:.1f} s of face, full pipeline"
    probability_lag = float(np.mean(probability_lags_ms)) if probability_lags_ms else None
    label_lag = float(np.mean(label_lags_ms)) if label_lags_ms else None
    return [Figure("smoothing", "clips: label flips per minute, raw", raw_flips / minutes, "/min", issue=4, note=note),
            Figure("smoothing", "clips: label flips per minute, smoothed", smooth_flips / minutes, "/min", issue=4,
                   note=note),
            Figure("smoothing", "clips: label lag added by smoothing, mean", label_lag, "ms", "<= 150",
                   label_lag is not None and label_lag <= 150, 4, note + f", {len(label_lags_ms)} label changes"),
            Figure("smoothing", "clips: probability lag added by smoothing", probability_lag, "ms", "<= 150",
                   probability_lag is not None and probability_lag <= 150, 4, note)]


def run(quick: bool) -> list[Figure]:
    return held_faces(quick) + real_clips()
