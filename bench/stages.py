"""Section 1: cost of each stage of the core per frame, at 640x480 with one and five faces."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np
from mediapipe.python.solution_base import SolutionBase

from bench.figures import Figure, median_p95
from bench.frames import five_faces_640x480, one_face_640x480, tracked_faces
from fer_perception.emotion.loading import load_emotion_model
from fer_perception.expression_pipeline import load_yaml, pipeline_from_config
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig
from fer_perception.image_codec import decode_compressed, decode_image, encode_image
from fer_perception.paths import config_path

SECTION = "stages"


class MediaPipeTime:
    """Time spent inside MediaPipe's solution calls, per solution (FaceDetection, FaceMesh), since :meth:`take`."""

    def __init__(self) -> None:
        self.by_solution: dict[str, float] = defaultdict(float)

    def take(self) -> dict[str, float]:
        taken, self.by_solution = dict(self.by_solution), defaultdict(float)
        return taken


@contextmanager
def timing_mediapipe():
    """Wrap ``SolutionBase.process`` (detector and mesh alike) to sum the time spent inside each."""
    clock = MediaPipeTime()
    original = SolutionBase.process

    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            clock.by_solution[type(self).__name__] += time.perf_counter() - start

    SolutionBase.process = timed
    try:
        yield clock
    finally:
        SolutionBase.process = original


@dataclass
class FrontEndTimes:
    """Per-frame seconds of the front end (process + crops) and of its parts."""

    total: list[float] = field(default_factory=list)
    detection: list[float] = field(default_factory=list)
    mesh: list[float] = field(default_factory=list)
    crops: list[float] = field(default_factory=list)
    faces: int = 0

    @property
    def mediapipe(self) -> list[float]:
        return [d + m for d, m in zip(self.detection, self.mesh)]

    @property
    def rest(self) -> list[float]:
        """Tracking, head pose, quality, alignment: what is neither MediaPipe nor the crops."""
        return [t - mp - c for t, mp, c in zip(self.total, self.mediapipe, self.crops)]


def time_front_end(frames_bgr: list[np.ndarray], warmup: int) -> FrontEndTimes:
    """Per-frame wall time of process + crops and its parts, after ``warmup`` frames."""
    front_end = FaceFrontEnd(FaceFrontEndConfig())
    frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames_bgr]
    times = FrontEndTimes()
    with timing_mediapipe() as clock:
        for index, image in enumerate(frames):
            clock.take()
            start = time.perf_counter()
            result = front_end.process(image, index * 33_333_333)
            cropping = time.perf_counter()
            for face in result.faces:
                front_end.crop(image, face)
            end = time.perf_counter()
            inside = clock.take()
            if index >= warmup:
                times.total.append(end - start)
                times.crops.append(end - cropping)
                times.detection.append(inside.get("FaceDetection", 0.0))
                times.mesh.append(inside.get("FaceMesh", 0.0))
            times.faces = len(result.faces)
    front_end.close()
    return times


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
    prepared = tracked_faces(frames)
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
        times = time_front_end(frames, warmup)
        median, p95 = median_p95(times.total)
        mp_median, _ = median_p95(times.mediapipe)
        ratio = float(np.median(np.asarray(times.total) / np.maximum(times.mediapipe, 1e-9)))
        figures += [
            Figure(SECTION, f"face front end {label} 640x480 median", median, "ms", issue=7,
                   note=f"detection + mesh + tracking + pose + quality + crops; {times.faces} faces found"),
            Figure(SECTION, f"face front end {label} 640x480 p95", p95, "ms", issue=7),
            Figure(SECTION, f"  detection {label}, mean per frame", 1000 * float(np.mean(times.detection)), "ms",
                   issue=7, note="the detector runs every detect_interval frames and for new faces"),
            Figure(SECTION, f"  mesh {label} median", median_p95(times.mesh)[0], "ms", issue=7),
            Figure(SECTION, f"  tracking, pose, quality, alignment {label} median", median_p95(times.rest)[0],
                   "ms", issue=7),
            Figure(SECTION, f"  crops {label} median", median_p95(times.crops)[0], "ms", issue=7),
            Figure(SECTION, f"MediaPipe calls inside the front end {label} median", mp_median, "ms", issue=7),
            Figure(SECTION, f"front end / its MediaPipe calls {label} (median of per-frame ratios)", ratio, "x",
                   goal="<= 1.3", met=ratio <= 1.3, issue=7),
        ]
    return figures + expression_stage(one[:count], quick)
