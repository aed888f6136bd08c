"""The expression stage of the core: faces in, per-person expressions and events out.

For all faces of a frame it estimates AUs and eye closure, classifies emotion
(the learned classifier on the aligned crops in one batch, the FACS mapping
from the AUs, fused), smooths everything per track in seconds, and detects
events. Track state is created when a track first appears and dropped when
it is lost, so memory stays bounded however many people come and go. The
expression node and the offline analyser both run this class, so they give
the same answers on the same frames.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import yaml

from fer_perception.au.estimators import AUEstimator, create_au_estimator
from fer_perception.emotion.facs import FacsMapping
from fer_perception.emotion.fusion import Circumplex, cascade_scores, fuse, temperature_scaled
from fer_perception.emotion.loading import model_fusion, model_temperature
from fer_perception.events import EventConfig, FaceEvents
from fer_perception.paths import config_path
from fer_perception.smoothing import ExponentialSmoother, FrameAttentionSmoother, LabelHysteresis
from fer_perception.types import EMOTION_LABELS, ActionUnits, ExpressionEvent, FaceFrame, TrackedFace

NS = 1_000_000_000
NEUTRAL = EMOTION_LABELS.index("neutral")
EMOTION_SMOOTHING_METHODS = ("ema", "attention")
"""How emotion probabilities are smoothed per track: an exponential moving average, or the quality-weighted
window mean (frame attention)."""


class EmotionModel(Protocol):
    """What the pipeline needs of a learned classifier: probabilities for a batch of aligned crops."""

    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        """N x 7 probabilities over ``EMOTION_LABELS``."""


@dataclass(frozen=True)
class SmoothingConfig:
    emotion_method: str
    emotion_tau_s: float
    attention_window_s: float
    label_margin: float
    label_min_dwell_s: float
    au_tau_s: float
    eyes_tau_s: float

    def __post_init__(self) -> None:
        if self.emotion_method not in EMOTION_SMOOTHING_METHODS:
            raise ValueError(f"smoothing.emotion_method {self.emotion_method!r} is not one of "
                             f"{', '.join(EMOTION_SMOOTHING_METHODS)}")


@dataclass
class FaceExpression:
    """Everything the expression message carries for one face in one frame."""

    face_id: str
    aus: ActionUnits
    au_smoothed: np.ndarray
    eye_closure_smoothed: tuple[float, float]  # left, right
    emotion: np.ndarray | None = None
    emotion_smoothed: np.ndarray | None = None
    label: int = 0
    label_smoothed: int = 0
    confidence: float = 0.0
    valence: float = 0.0
    arousal: float = 0.0
    valence_smoothed: float = 0.0
    arousal_smoothed: float = 0.0
    valence_arousal_confidence: float = 0.0


@dataclass
class ExpressionFrame:
    """The expression stage's output for one frame.

    ``restarted_after_ns`` is set when this frame's stamp lay before the previous frame's (a replay looped, a
    clock was reset): every track was then closed at that previous stamp and tracking started afresh.
    """

    stamp_ns: int
    expressions: list[FaceExpression]
    events: list[ExpressionEvent]
    restarted_after_ns: int | None = None


class TrackState:
    """Per-person smoothers and event detectors."""

    def __init__(self, face_id: str, smoothing: SmoothingConfig, events: EventConfig, ids: itertools.count):
        self.events = FaceEvents(face_id, events, ids)
        self.aus = ExponentialSmoother(smoothing.au_tau_s)
        self.eyes = ExponentialSmoother(smoothing.eyes_tau_s)
        self.valence_arousal = ExponentialSmoother(smoothing.emotion_tau_s)
        self.label = LabelHysteresis(smoothing.label_margin, smoothing.label_min_dwell_s)
        self.emotion: ExponentialSmoother | FrameAttentionSmoother = (
            ExponentialSmoother(smoothing.emotion_tau_s) if smoothing.emotion_method == "ema"
            else FrameAttentionSmoother(smoothing.attention_window_s))
        self.last_confidence = 0.0
        self.last_seen_ns = 0

    def smooth_emotion(self, probabilities: np.ndarray, stamp_s: float, quality: float) -> np.ndarray:
        if isinstance(self.emotion, FrameAttentionSmoother):
            return self.emotion.update(probabilities, stamp_s, quality)
        return self.emotion.update(probabilities, stamp_s)


class ExpressionPipeline:
    """AUs, eyes, emotion, smoothing and events for every face of every frame."""

    def __init__(self, au_estimator: AUEstimator, classifier: EmotionModel | None, emotion_config: dict,
                 expression_config: dict):
        self.au_estimator = au_estimator
        self.classifier = classifier
        self.facs = FacsMapping.from_dict(emotion_config["facs"])
        self.circumplex = Circumplex.from_dict(emotion_config["circumplex"])
        self.fusion_weights = (float(emotion_config["fusion"]["learned"]), float(emotion_config["fusion"]["facs"]))
        self.temperature = float(emotion_config["classifier"].get("temperature", 1.0))
        self.coarse_to_fine = bool(emotion_config.get("coarse_to_fine", False))
        self.smoothing = SmoothingConfig(**expression_config["smoothing"])
        self.event_config = EventConfig.from_dict(expression_config["events"])
        self.track_timeout_ns = int(float(expression_config["track_timeout_s"]) * NS)
        self._ids = itertools.count()
        self.tracks: dict[str, TrackState] = {}
        self._origin_ns: int | None = None
        self.last_stamp_ns: int | None = None

    @property
    def needs_crops(self) -> bool:
        return (self.classifier is not None and self.fusion_weights[0] > 0) or self.au_estimator.needs_crop

    def process(self, frame: FaceFrame, crops: list[np.ndarray] | None = None) -> ExpressionFrame:
        """``crops[i]`` is the aligned crop of ``frame.faces[i]`` (needed when :attr:`needs_crops`).

        Tracks named in ``frame.lost``, and tracks unseen for ``track_timeout_s`` (a lost message that
        never came), are dropped with their open episodes closed. A stamp before the previous frame's
        closes every track at the previous stamp and starts afresh (see ``ExpressionFrame``), so no
        episode or blink gets a negative duration.
        """
        stamp_ns = frame.stamp_ns
        events: list[ExpressionEvent] = []
        restarted_after = None
        if self.last_stamp_ns is not None and stamp_ns < self.last_stamp_ns:
            restarted_after = self.last_stamp_ns
            for face_id in list(self.tracks):
                events += self._drop(face_id, self.last_stamp_ns)
            self._origin_ns = None
        if self._origin_ns is None:
            self._origin_ns = stamp_ns
        self.last_stamp_ns = stamp_ns
        # Smoothers see seconds since the first frame: the same values whatever the clock's epoch.
        stamp_s = (stamp_ns - self._origin_ns) / NS
        visible = {f.track_id for f in frame.faces}
        for face_id in frame.lost:
            events += self._drop(face_id, stamp_ns)
        events += self.expire(stamp_ns, keep=visible)
        faces = [f for f in frame.faces if f.landmarks is not None]
        if self.needs_crops and (crops is None or len(crops) != len(frame.faces)):
            raise ValueError("the expression stage needs one aligned crop per face")
        face_crops = [crops[i] for i, f in enumerate(frame.faces) if f.landmarks is not None] if crops else None
        learned = self._classify(face_crops)
        expressions = []
        for index, face in enumerate(faces):
            state = self.tracks.get(face.track_id)
            if state is None:
                state = self.tracks[face.track_id] = TrackState(face.track_id, self.smoothing, self.event_config,
                                                                self._ids)
                events.append(state.events.appeared(stamp_ns, face.detection_confidence))
            state.last_confidence, state.last_seen_ns = face.detection_confidence, stamp_ns
            crop = face_crops[index] if face_crops else None
            neutral = float(learned[index][NEUTRAL]) if learned is not None else None
            units = self.au_estimator.estimate(face.track_id, face.landmarks, face.head_pose, crop, stamp_s, neutral)
            expression = self._expression(face, units, learned[index] if learned is not None else None, state,
                                          stamp_s)
            expressions.append(expression)
            evidence = None if expression.emotion_smoothed is None else self.label_evidence(expression.emotion_smoothed)
            events += state.events.update(stamp_ns, evidence, expression.au_smoothed, units.estimated, units)
        return ExpressionFrame(stamp_ns, expressions, events, restarted_after)

    def label_evidence(self, probabilities: np.ndarray) -> np.ndarray:
        """What labels and emotion episodes are decided on: the probabilities, or with ``coarse_to_fine`` the
        cascade's scores (a clearly negative face whose exact class is split still gets its label and episode)."""
        return cascade_scores(probabilities) if self.coarse_to_fine else probabilities

    def expire(self, stamp_ns: int, keep: set[str] = frozenset()) -> list[ExpressionEvent]:
        """Drop the tracks (except ``keep``) unseen for more than ``track_timeout_s`` at source time
        ``stamp_ns``, their open episodes closed then. The expression node also calls it when frames stop
        arriving, so a dead camera does not leave a smile open."""
        stale = [track for track, state in self.tracks.items()
                 if track not in keep and stamp_ns - state.last_seen_ns > self.track_timeout_ns]
        events = []
        for face_id in stale:
            events += self._drop(face_id, stamp_ns)
        return events

    def capture_neutral(self, track_ids: list[str] | None, duration_s: float) -> list[str]:
        """Take the next ``duration_s`` seconds of these tracks (every current one when None) as each person's
        neutral face (a robot that asked the person to relax); returns the tracks that will be captured."""
        return self.au_estimator.capture_neutral(track_ids, duration_s)

    def close(self, stamp_ns: int) -> list[ExpressionEvent]:
        """Offsets of every open episode of every track, ended at ``stamp_ns`` (shutdown)."""
        events = []
        for state in self.tracks.values():
            events += state.events.close(stamp_ns)
        return events

    def _drop(self, face_id: str, stamp_ns: int) -> list[ExpressionEvent]:
        state = self.tracks.pop(face_id, None)
        self.au_estimator.drop(face_id)
        return state.events.lost(stamp_ns, state.last_confidence) if state else []

    def _classify(self, crops: list[np.ndarray] | None) -> np.ndarray | None:
        if self.classifier is None or self.fusion_weights[0] <= 0 or not crops:
            return None
        return temperature_scaled(self.classifier.predict(crops), self.temperature)

    def _expression(self, face: TrackedFace, units: ActionUnits, learned: np.ndarray | None, state: TrackState,
                    stamp_s: float) -> FaceExpression:
        au_smoothed = state.aus.update(units.intensity, stamp_s)
        eyes = state.eyes.update(np.array([units.left_eye_closure, units.right_eye_closure]), stamp_s)
        expression = FaceExpression(face.track_id, units, au_smoothed, (float(eyes[0]), float(eyes[1])))
        probabilities = fuse([(learned, self.fusion_weights[0]), (self.facs.probabilities(units),
                                                                  self.fusion_weights[1])])
        if probabilities is None:
            return expression
        smoothed = state.smooth_emotion(probabilities, stamp_s, face.quality.score)
        expression.emotion, expression.emotion_smoothed = probabilities, smoothed
        expression.label = int(np.argmax(self.label_evidence(probabilities)))
        evidence = self.label_evidence(smoothed)
        expression.label_smoothed = state.label.update(evidence, stamp_s)
        expression.confidence = float(evidence[expression.label_smoothed])
        expression.valence, expression.arousal, expression.valence_arousal_confidence = \
            self.circumplex.valence_arousal(probabilities)
        va = state.valence_arousal.update(np.array([expression.valence, expression.arousal]), stamp_s)
        expression.valence_smoothed, expression.arousal_smoothed = float(va[0]), float(va[1])
        return expression


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def pipeline_from_config(classifier: EmotionModel | None, au_config: Path | None = None,
                         emotion_config: Path | None = None, expression_config: Path | None = None,
                         au_estimator: str | None = None, coarse_to_fine: bool | None = None,
                         emotion_smoothing: str | None = None, emotion_model: str | None = None) -> ExpressionPipeline:
    """The pipeline as configured in ``config/`` (each file overridable); ``au_estimator``, ``coarse_to_fine``
    and ``emotion_smoothing`` (one of :data:`EMOTION_SMOOTHING_METHODS`) override the files' choices when
    given. The fusion weights and the temperature are those of the emotion model in use (``emotion_model``,
    default the file's ``classifier.model``: :func:`~fer_perception.emotion.loading.model_fusion`,
    :func:`~fer_perception.emotion.loading.model_temperature`)."""
    emotion = load_yaml(emotion_config or config_path("emotion.yaml"))
    emotion["fusion"] = model_fusion(emotion, emotion_model)
    emotion["classifier"]["temperature"] = model_temperature(emotion, emotion_model)
    if coarse_to_fine is not None:
        emotion["coarse_to_fine"] = coarse_to_fine
    expression = load_yaml(expression_config or config_path("expression.yaml"))
    if emotion_smoothing:
        expression["smoothing"]["emotion_method"] = emotion_smoothing
    return ExpressionPipeline(create_au_estimator(au_config or config_path("action_units.yaml"), au_estimator),
                              classifier, emotion, expression)
