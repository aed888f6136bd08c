"""The live graph's core in one loop, for recorded inputs.

:class:`Analyzer` runs the face front end and the expression pipeline on
each frame exactly as ``face_detection_node`` and ``expression_node`` do
(same classes, same configuration files, same colour conversion and crops),
so a recording analysed offline gives the results the live graph gives on the
same frames. Ids are deterministic (``f0``, ``f1``, ... in order of
appearance) so repeated analyses agree, and so a first pass over part of the
input (:meth:`Analyzer.neutral_meshes`) names the faces as the full analysis
will.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import yaml

from fer_perception.emotion.loading import load_emotion_model
from fer_perception.expression_pipeline import ExpressionFrame, ExpressionPipeline, load_yaml, pipeline_from_config
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig
from fer_perception.face.parameters import FRONT_END_PARAMS
from fer_perception.offline.inputs import InputFrame
from fer_perception.parameter_spec import checked_values
from fer_perception.paths import config_path
from fer_perception.types import ExpressionEvent, FaceFrame

In = TypeVar("In")
Out = TypeVar("Out")
STAGE_QUEUE = 8  # items buffered between two stages
NS = 1_000_000_000
_END = object()


def node_parameters(path: Path) -> dict:
    """The ``ros__parameters`` of a node parameter file (``/**`` section)."""
    document = yaml.safe_load(path.read_text()) or {}
    return dict(document.get("/**", {}).get("ros__parameters", {}))


def front_end_config(path: Path | None = None, deterministic_ids: bool = True,
                     warn: Callable[[str], None] = print) -> FaceFrontEndConfig:
    """The face front end as ``face_detection_node`` configures it from ``face_detection.yaml``: the node's
    parameters, checked by the same rules (a bad value is replaced by its default, ``warn`` says why)."""
    path = path or config_path("face_detection.yaml")
    values = checked_values(FRONT_END_PARAMS, node_parameters(path), lambda reason: warn(f"{path}: {reason}"))
    return replace(FaceFrontEndConfig(), **{**values, "deterministic_ids": deterministic_ids})


@dataclass(frozen=True)
class AnalysisChoices:
    """Choices made for one analysis instead of the configuration files', as the graph arguments and node
    parameters of the same names make them live (``fer-analyze --detector``, ...). None: the files' choice
    (``expression_node.yaml``'s where it makes one, else ``face_detection.yaml``'s, ``emotion.yaml``'s,
    ``expression.yaml``'s, ``action_units.yaml``'s)."""

    detector: str | None = None
    emotion_model: str | None = None
    emotion_backend: str | None = None
    coarse_to_fine: bool | None = None
    emotion_smoothing: str | None = None
    au_estimator: str | None = None

    def made(self) -> dict[str, str | bool]:
        """The choices made (not None), by name: what an analysis's summary records."""
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass
class AnalysedFrame:
    """One input frame with the faces found in it and the expression stage's output."""

    frame: InputFrame
    faces: FaceFrame
    result: ExpressionFrame


class Analyzer:
    """Face front end, then the expression pipeline, frame by frame."""

    def __init__(self, front_end: FaceFrontEnd, pipeline: ExpressionPipeline):
        self.front_end = front_end
        self.pipeline = pipeline
        self.last_stamp_ns = 0

    @classmethod
    def from_config(cls, warn=print, still_images: bool = False,
                    choices: AnalysisChoices = AnalysisChoices()) -> Analyzer:
        """The analyser configured by the package's ``config/`` files, as the live nodes are, but for the
        ``choices`` made.

        ``still_images``: detect in every image and report a face from the first image it is found in
        (``detect_interval`` and ``min_hits`` 1), since images may be separate photos, not a video's frames.
        """
        node = node_parameters(config_path("expression_node.yaml"))

        def chosen(name: str) -> str | bool | None:
            value = getattr(choices, name)
            return value if value is not None else (node.get(name) if node.get(name) != "" else None)

        emotion_config = config_path("emotion.yaml")
        classifier = load_emotion_model(load_yaml(emotion_config), warn, chosen("emotion_model"),
                                        chosen("emotion_backend"))
        pipeline = pipeline_from_config(classifier, emotion_config=emotion_config,
                                        au_estimator=chosen("au_estimator"), coarse_to_fine=chosen("coarse_to_fine"),
                                        emotion_smoothing=chosen("emotion_smoothing"),
                                        emotion_model=chosen("emotion_model"))
        config = front_end_config(warn=warn)
        if choices.detector is not None:
            config = replace(config, detector=choices.detector)
        return cls(FaceFrontEnd(replace(config, min_hits=1, detect_interval=1) if still_images else config), pipeline)

    def process(self, frame: InputFrame) -> AnalysedFrame:
        """One frame, both stages in this thread."""
        return self._expressions(self._faces(frame))

    def analyse(self, frames: Iterable[InputFrame]) -> Iterator[AnalysedFrame]:
        """Every frame in order, with decoding, the face front end and the expression stage in three threads.

        Each stage still sees the frames one by one in order, so the results equal :meth:`process`'s;
        the stages overlap because MediaPipe, OpenCV and torch release the GIL while they compute.
        An exception in any stage ends the iteration with that exception.
        """
        decoded = in_thread(frames, lambda frame: frame, "decode")
        return in_thread(in_thread(decoded, self._faces, "faces"), self._expressions, "expressions")

    def neutral_meshes(self, frames: Iterable[InputFrame], start_s: float,
                       end_s: float) -> dict[str, list[np.ndarray]]:
        """Each track's face meshes in the frames from ``start_s`` to ``end_s`` seconds after the first frame.

        A fresh front end configured as this one runs over the frames up to ``end_s`` and no further, so its
        deterministic ids are those the full analysis gives the same faces.
        """
        front_end = FaceFrontEnd(self.front_end.config)
        meshes: dict[str, list[np.ndarray]] = {}
        first_ns: int | None = None
        try:
            for frame in frames:
                first_ns = frame.stamp_ns if first_ns is None else first_ns
                time_s = (frame.stamp_ns - first_ns) / NS
                if time_s > end_s:
                    break
                _, faces = find_faces(front_end, frame)
                if time_s >= start_s:
                    for face in faces.faces:
                        if face.landmarks is not None:
                            meshes.setdefault(face.track_id, []).append(face.landmarks)
        finally:
            front_end.close()
        return meshes

    def set_neutral(self, meshes: dict[str, list[np.ndarray]]) -> None:
        """Take these meshes (per track id, e.g. from :meth:`neutral_meshes`) as each track's neutral face."""
        for track_id, track_meshes in meshes.items():
            self.pipeline.au_estimator.set_neutral(track_id, track_meshes)

    def _faces(self, frame: InputFrame) -> tuple[InputFrame, FaceFrame, list | None]:
        image_rgb, faces = find_faces(self.front_end, frame)
        crops = [self.front_end.crop(image_rgb, face) for face in faces.faces] if self.pipeline.needs_crops else None
        return frame, faces, crops

    def _expressions(self, found: tuple[InputFrame, FaceFrame, list | None]) -> AnalysedFrame:
        frame, faces, crops = found
        self.last_stamp_ns = frame.stamp_ns
        return AnalysedFrame(frame, faces, self.pipeline.process(faces, crops))

    def finish(self) -> list[ExpressionEvent]:
        """Close every open episode at the last frame's stamp (the end of the input)."""
        return self.pipeline.close(self.last_stamp_ns)

    def close(self) -> None:
        self.front_end.close()


def find_faces(front_end: FaceFrontEnd, frame: InputFrame) -> tuple[np.ndarray, FaceFrame]:
    """The frame as RGB (as the face node converts camera images) and the faces ``front_end`` finds in it."""
    image_rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
    return image_rgb, front_end.process(image_rgb, frame.stamp_ns)


def in_thread(items: Iterable[In], stage: Callable[[In], Out], name: str) -> Iterator[Out]:
    """``map(stage, items)`` computed in a worker thread that runs up to ``STAGE_QUEUE`` items ahead."""
    results: queue.Queue = queue.Queue(maxsize=STAGE_QUEUE)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                results.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(stage(item)):
                    return
            put(_END)
        except BaseException as error:  # handed to the consumer, raised there
            put(error)

    worker = threading.Thread(target=work, name=f"analysis_{name}", daemon=True)
    worker.start()
    try:
        while (result := results.get()) is not _END:
            if isinstance(result, BaseException):
                raise result
            yield result
    finally:
        stop.set()
        worker.join()
