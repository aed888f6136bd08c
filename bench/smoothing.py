"""Section 5: label flips per minute raw vs smoothed on the real clips, and the lag the smoothing adds.

The lag is the shift (in ms) that best aligns the smoothed probability traces
with the raw ones (maximum cross-correlation), over all classes of all clips.
"""
from __future__ import annotations

import cv2
import numpy as np

from bench.figures import Figure
from bench.frames import media
from fer_perception.emotion.loading import load_emotion_model
from fer_perception.expression_pipeline import load_yaml, pipeline_from_config
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig
from fer_perception.paths import config_path

CLIPS = ("single_face.mp4", "noface_face.mov")
MAX_LAG_FRAMES = 30


def traces(clip: str) -> tuple[float, list[np.ndarray], list[np.ndarray], list[int], list[int]]:
    capture = cv2.VideoCapture(str(media(clip)))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    front_end = FaceFrontEnd(FaceFrontEndConfig(deterministic_ids=True))
    pipeline = pipeline_from_config(load_emotion_model(load_yaml(config_path("emotion.yaml")), lambda _: None))
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
    return fps, raw, smooth, labels, smooth_labels


def flips(labels: list[int]) -> int:
    return int(np.count_nonzero(np.diff(labels))) if len(labels) > 1 else 0


def best_lag(raw: np.ndarray, smooth: np.ndarray) -> int:
    """Frames by which ``smooth`` trails ``raw`` (summed correlation over classes)."""
    raw = raw - raw.mean(axis=0)
    smooth = smooth - smooth.mean(axis=0)
    scores = [float((raw[: len(raw) - lag] * smooth[lag:]).sum()) for lag in range(min(MAX_LAG_FRAMES, len(raw) - 1))]
    return int(np.argmax(scores))


def run(quick: bool) -> list[Figure]:
    raw_flips = smooth_flips = 0
    minutes = 0.0
    lags_ms = []
    for clip in CLIPS:
        fps, raw, smooth, labels, smooth_labels = traces(clip)
        raw_flips += flips(labels)
        smooth_flips += flips(smooth_labels)
        minutes += len(labels) / fps / 60
        if len(raw) > MAX_LAG_FRAMES:
            lags_ms.append(best_lag(np.array(raw), np.array(smooth)) * 1000 / fps)
    raw_rate, smooth_rate = raw_flips / minutes, smooth_flips / minutes
    ratio = raw_rate / smooth_rate if smooth_rate else float("inf")
    lag = float(np.mean(lags_ms)) if lags_ms else None
    note = f"clips {', '.join(CLIPS)}, {minutes * 60:.1f} s of face"
    return [Figure("smoothing", "label flips per minute, raw", raw_rate, "/min", issue=4, note=note),
            Figure("smoothing", "label flips per minute, smoothed", smooth_rate, "/min", issue=4, note=note),
            Figure("smoothing", "flip reduction raw / smoothed", ratio, "x", ">= 5", ratio >= 5, 4, note),
            Figure("smoothing", "lag added by smoothing", lag, "ms", "<= 150", lag is not None and lag <= 150, 4,
                   note)]
