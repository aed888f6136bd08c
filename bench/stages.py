"""Section 1: cost of each stage of the core per frame, at 640x480 with one and five faces."""
from __future__ import annotations

import time
from contextlib import contextmanager

import cv2
import numpy as np
from mediapipe.python.solution_base import SolutionBase

from bench.figures import Figure, median_p95
from bench.frames import five_faces_640x480, one_face_640x480
from fer_perception.emotion.loading import load_emotion_model
from fer_perception.expression_pipeline import load_yaml, pipeline_from_config
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig
from fer_perception.image_codec import decode_compressed, decode_image, encode_image
from fer_perception.paths import config_path

SECTION = "stages"


class MediaPipeTime:
    """Time spent inside MediaPipe's solution calls, summed since the last :meth:`take`."""

    def __init__(self) -> None:
        self.total = 0.0

    def take(self) -> float:
        total, self.total = self.total, 0.0
        return total


@contextmanager
def timing_mediapipe():
    """Wrap ``SolutionBase.process`` (detector and mesh alike) to sum the time spent inside it."""
    clock = MediaPipeTime()
    original = SolutionBase.process

    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            clock.total += time.perf_counter() - start

    SolutionBase.process = timed
    try:
        yield clock
    finally:
        SolutionBase.process = original


def time_front_end(frames_bgr: list[np.ndarray], warmup: int) -> tuple[list[float], list[float], int]:
    """Per-frame wall time of process + crops, the MediaPipe time inside it, and faces in the last frame."""
    front_end = FaceFrontEnd(FaceFrontEndConfig())
    frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames_bgr]
    totals, inside = [], []
    faces = 0
    with timing_mediapipe() as clock:
        for index, image in enumerate(frames):
            clock.take()
            start = time.perf_counter()
            result = front_end.process(image, index * 33_333_333)
            for face in result.faces:
                front_end.crop(image, face)
            elapsed = time.perf_counter() - start
            if index >= warmup:
                totals.append(elapsed)
                inside.append(clock.take())
            faces = len(result.faces)
    front_end.close()
    return totals, inside, faces


def time_call(call, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def decoding(frame_bgr: np.ndarray, repeats: int) -> list[Figure]:
    figures = []
    for encoding in ("bgr8", "rgb8", "mono8", "yuv422"):
        encoded = encode_image(frame_bgr, encoding)
        median, p95 = median_p95(time_call(lambda: decode_image(*encoded), repeats))
        figures.append(Figure(SECTION, f"decode {encoding} 640x480 median", median, "ms", issue=7))
    jpeg = cv2.imencode(".jpg", frame_bgr)[1].tobytes()
    median, _ = median_p95(time_call(lambda: decode_compressed("jpeg", jpeg), repeats))
    figures.append(Figure(SECTION, "decode jpeg 640x480 median", median, "ms", issue=7))
    return figures


def expression_stage(frames: list[np.ndarray], quick: bool) -> list[Figure]:
    """The expression pipeline per frame on the front end's real faces, with and without the classifier."""
    front_end = FaceFrontEnd(FaceFrontEndConfig(min_hits=1))
    prepared = []
    for index, frame in enumerate(frames):
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        faces = front_end.process(rgb, index * 33_333_333)
        prepared.append((faces, [front_end.crop(rgb, face) for face in faces.faces]))
    front_end.close()
    classifier = load_emotion_model(load_yaml(config_path("emotion.yaml")), print)
    figures = []
    for label, model in (("all", classifier),
                         ("no learned classifier", None)):
        pipeline = pipeline_from_config(model)
        samples = []
        for faces, crops in prepared * (1 if quick else 3):
            start = time.perf_counter()
            pipeline.process(faces, crops)
            samples.append(time.perf_counter() - start)
        median, p95 = median_p95(samples[10:])
        figures += [Figure(SECTION, f"expression stage 1 face, {label}, median", median, "ms", issue=4),
                    Figure(SECTION, f"expression stage 1 face, {label}, p95", p95, "ms", issue=4)]
    return figures


def run(quick: bool) -> list[Figure]:
    count, warmup = (60, 10) if quick else (300, 30)
    one = one_face_640x480()
    one = (one * (count // len(one) + 2))[: count + warmup]
    figures = decoding(one[0], 50 if quick else 300)
    for label, frames in (("1 face", one), ("5 faces", five_faces_640x480(count + warmup))):
        totals, inside, faces = time_front_end(frames, warmup)
        median, p95 = median_p95(totals)
        mp_median, mp_p95 = median_p95(inside)
        ratio = float(np.median(np.asarray(totals) / np.maximum(inside, 1e-9)))
        figures += [
            Figure(SECTION, f"face front end {label} 640x480 median", median, "ms", issue=7,
                   note=f"detection + mesh + tracking + pose + quality + crops; {faces} faces found"),
            Figure(SECTION, f"face front end {label} 640x480 p95", p95, "ms", issue=7),
            Figure(SECTION, f"MediaPipe calls inside the front end {label} median", mp_median, "ms", issue=7),
            Figure(SECTION, f"front end / its MediaPipe calls {label} (median of per-frame ratios)", ratio, "x",
                   goal="<= 1.3", met=ratio <= 1.3, issue=7),
        ]
    return figures + expression_stage(one[:count], quick)
