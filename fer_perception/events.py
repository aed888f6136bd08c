"""Frame-level signals turned into the events a robot's behaviour layer reacts to, per face.

As the social-robotics video pipeline did, continuous per-frame values
become episodes with an onset and an offset (a smile, a frown, an emotion, eyes
closed) or momentary events (a blink, a face appearing or leaving). Every
onset gets exactly one offset: when the signal falls, when the track is lost,
or when :meth:`FaceEvents.close` is called at shutdown. Times come from the
source stamps, so the frame rate does not change the events.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from fer_perception.types import AU_NUMBERS, EMOTION_LABELS, ActionUnits, EventPhase, ExpressionEvent

NS = 1_000_000_000
# Every kind of event, as ExpressionEvent.kind names them.
EVENT_KINDS = ("face_appeared", "face_lost", "emotion", "smile", "brow_raise", "frown", "jaw_drop", "blink",
               "eyes_closed")


@dataclass(frozen=True)
class EpisodeThresholds:
    """Onset once the signal stays >= ``enter`` for ``min_duration_s``; offset once it stays
    below ``exit`` for longer than ``merge_gap_s`` (shorter dips do not split the episode)."""

    enter: float
    exit: float
    min_duration_s: float
    merge_gap_s: float

    def __post_init__(self) -> None:
        if not self.exit <= self.enter:
            raise ValueError(f"episode exit threshold {self.exit} must not exceed enter threshold {self.enter}")
        if self.min_duration_s < 0 or self.merge_gap_s < 0:
            raise ValueError("episode durations must not be negative")


class EpisodeDetector:
    """Hysteresis episode detection on one signal, with peak and mean over the episode."""

    IDLE, CANDIDATE, ACTIVE, GAP = range(4)

    def __init__(self, thresholds: EpisodeThresholds):
        self.thresholds = thresholds
        self.state = self.IDLE
        self._reset_episode(0)

    def _reset_episode(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.gap_start_ns = 0
        self.peak = -np.inf
        self._sum = 0.0
        self._count = 0

    @property
    def mean(self) -> float:
        return self._sum / self._count if self._count else 0.0

    def _add(self, value: float) -> None:
        self.peak = max(self.peak, value)
        self._sum += value
        self._count += 1

    def update(self, value: float, stamp_ns: int) -> tuple[bool, int | None]:
        """Feed one sample; returns (onset now, end stamp of an episode that ended now or None)."""
        t = self.thresholds
        if self.state == self.GAP:
            if value >= t.enter:
                self.state = self.ACTIVE
            elif (stamp_ns - self.gap_start_ns) / NS > t.merge_gap_s:
                ended_at = self.gap_start_ns
                self.state = self.IDLE
                onset, _ = self.update(value, stamp_ns)
                return onset, ended_at
        if self.state == self.IDLE:
            if value >= t.enter:
                self.state = self.CANDIDATE
                self._reset_episode(stamp_ns)
            else:
                return False, None
        if self.state == self.CANDIDATE:
            if value < t.enter:
                self.state = self.IDLE
                return False, None
            self._add(value)
            if (stamp_ns - self.start_ns) / NS >= t.min_duration_s:
                self.state = self.ACTIVE
                return True, None
            return False, None
        if self.state == self.ACTIVE and value < t.exit:
            self.state = self.GAP
            self.gap_start_ns = stamp_ns
            return False, None
        if self.state == self.ACTIVE:
            self._add(value)
        return False, None

    def close(self, stamp_ns: int) -> int | None:
        """End an open episode now (track lost, shutdown): its end stamp, or None if none was open."""
        end = {self.ACTIVE: stamp_ns, self.GAP: self.gap_start_ns}.get(self.state)
        self.state = self.IDLE
        return end


@dataclass(frozen=True)
class EyeThresholds:
    """Closure >= ``closed`` closes the eyes, < ``open`` opens them; a closure shorter than
    ``eyes_closed_min_s`` is a blink, a longer one an eyes-closed episode."""

    closed: float
    open: float
    eyes_closed_min_s: float


@dataclass(frozen=True)
class EventConfig:
    """Thresholds of every event kind (``config/expression.yaml``, section ``events``)."""

    emotion: EpisodeThresholds
    smile: EpisodeThresholds
    smile_felt_au6: float
    brow_raise: EpisodeThresholds
    frown: EpisodeThresholds
    jaw_drop: EpisodeThresholds
    eyes: EyeThresholds

    @classmethod
    def from_dict(cls, data: dict) -> "EventConfig":
        episodes = {k: EpisodeThresholds(**{f: float(v) for f, v in data[k].items()})
                    for k in ("emotion", "brow_raise", "frown", "jaw_drop")}
        smile = dict(data["smile"])
        felt = float(smile.pop("felt_au6"))
        eyes = EyeThresholds(**{f: float(v) for f, v in data["eyes"].items()})
        return cls(smile=EpisodeThresholds(**{f: float(v) for f, v in smile.items()}), smile_felt_au6=felt,
                   eyes=eyes, **episodes)


def _au(units: np.ndarray, au: int) -> float:
    return float(units[AU_NUMBERS.index(au)])


class FaceEvents:
    """All event detectors of one face; ids come from a counter shared by all faces of a run."""

    def __init__(self, face_id: str, config: EventConfig, ids: itertools.count):
        self.face_id = face_id
        self.config = config
        self._ids = ids
        self._open: dict[str, int] = {}  # detector key -> event id of its open episode
        self._episodes: dict[str, tuple[str, str, EpisodeDetector]] = {
            f"emotion:{label}": ("emotion", label, EpisodeDetector(config.emotion))
            for label in EMOTION_LABELS if label != "neutral"}
        self._episodes.update({
            "smile": ("smile", "", EpisodeDetector(config.smile)),
            "brow_raise": ("brow_raise", "", EpisodeDetector(config.brow_raise)),
            "frown": ("frown", "", EpisodeDetector(config.frown)),
            "jaw_drop": ("jaw_drop", "", EpisodeDetector(config.jaw_drop)),
        })
        self._smile_au6: list[float] = []
        self._eyes_closed_since: int | None = None
        self._eye_values: list[float] = []
        self._eyes_episode: int | None = None

    def appeared(self, stamp_ns: int, confidence: float) -> ExpressionEvent:
        return self._instant("face_appeared", "", stamp_ns, stamp_ns, confidence, confidence)

    def update(self, stamp_ns: int, emotion: np.ndarray | None, aus: np.ndarray | None,
               au_estimated: np.ndarray | None, eyes: ActionUnits | None) -> list[ExpressionEvent]:
        """Events caused by this frame: smoothed emotion probabilities, smoothed AUs, raw eye closure."""
        events: list[ExpressionEvent] = []
        if emotion is not None:
            for index, label in enumerate(EMOTION_LABELS):
                if label != "neutral":
                    events += self._episode(f"emotion:{label}", float(emotion[index]), stamp_ns)
        if aus is not None:
            signals = {"smile": (12,), "brow_raise": (1, 2), "frown": (4,), "jaw_drop": (26,)}
            for key, numbers in signals.items():
                if all(au_estimated[AU_NUMBERS.index(n)] for n in numbers):
                    events += self._episode(key, float(np.mean([_au(aus, n) for n in numbers])), stamp_ns,
                                            au6=_au(aus, 6) if key == "smile" else None)
        if eyes is not None and eyes.eyes_estimated:
            events += self._eyes(min(eyes.left_eye_closure, eyes.right_eye_closure), stamp_ns)
        return events

    def close(self, stamp_ns: int) -> list[ExpressionEvent]:
        """Offsets of every open episode, ended now (track lost or shutdown)."""
        events = []
        for key, (kind, detail, detector) in self._episodes.items():
            end = detector.close(stamp_ns)
            if end is not None and key in self._open:
                events.append(self._offset(key, kind, self._detail(key, detail), detector, end))
        if self._eyes_episode is not None:
            events.append(self._eyes_offset(stamp_ns))
        self._eyes_closed_since = None
        return events

    def lost(self, stamp_ns: int, confidence: float) -> list[ExpressionEvent]:
        return self.close(stamp_ns) + [self._instant("face_lost", "", stamp_ns, stamp_ns, confidence, confidence)]

    def _episode(self, key: str, value: float, stamp_ns: int, au6: float | None = None) -> list[ExpressionEvent]:
        kind, detail, detector = self._episodes[key]
        was_idle = detector.state == EpisodeDetector.IDLE
        onset, ended_at = detector.update(value, stamp_ns)
        events = []
        if ended_at is not None and key in self._open:
            events.append(self._offset(key, kind, self._detail(key, detail), detector, ended_at))
        if au6 is not None:
            if was_idle and detector.state != EpisodeDetector.IDLE:
                self._smile_au6 = []
            if detector.state in (EpisodeDetector.CANDIDATE, EpisodeDetector.ACTIVE):
                self._smile_au6.append(au6)
        if onset:
            self._open[key] = next(self._ids)
            events.append(ExpressionEvent(self._open[key], self.face_id, kind, EventPhase.ONSET,
                                          self._detail(key, detail), detector.start_ns, 0, 0.0,
                                          float(detector.peak), detector.mean))
        return events

    def _detail(self, key: str, detail: str) -> str:
        if key != "smile":
            return detail
        felt = self._smile_au6 and float(np.mean(self._smile_au6)) >= self.config.smile_felt_au6
        return "felt" if felt else "posed"

    def _offset(self, key: str, kind: str, detail: str, detector: EpisodeDetector, end_ns: int) -> ExpressionEvent:
        return ExpressionEvent(self._open.pop(key), self.face_id, kind, EventPhase.OFFSET, detail,
                               detector.start_ns, end_ns, (end_ns - detector.start_ns) / NS,
                               float(detector.peak), detector.mean)

    def _eyes(self, closure: float, stamp_ns: int) -> list[ExpressionEvent]:
        thresholds = self.config.eyes
        if self._eyes_closed_since is None:
            if closure >= thresholds.closed:
                self._eyes_closed_since = stamp_ns
                self._eye_values = [closure]
            return []
        if closure >= thresholds.open:
            self._eye_values.append(closure)
            long_enough = (stamp_ns - self._eyes_closed_since) / NS >= thresholds.eyes_closed_min_s
            if long_enough and self._eyes_episode is None:
                self._eyes_episode = next(self._ids)
                return [ExpressionEvent(self._eyes_episode, self.face_id, "eyes_closed", EventPhase.ONSET, "both",
                                        self._eyes_closed_since, 0, 0.0, max(self._eye_values),
                                        float(np.mean(self._eye_values)))]
            return []
        if self._eyes_episode is not None:
            return [self._eyes_offset(stamp_ns)]
        start, self._eyes_closed_since = self._eyes_closed_since, None
        return [self._instant("blink", "both", start, stamp_ns, max(self._eye_values),
                              float(np.mean(self._eye_values)))]

    def _eyes_offset(self, end_ns: int) -> ExpressionEvent:
        event = ExpressionEvent(self._eyes_episode, self.face_id, "eyes_closed", EventPhase.OFFSET, "both",
                                self._eyes_closed_since, end_ns, (end_ns - self._eyes_closed_since) / NS,
                                max(self._eye_values), float(np.mean(self._eye_values)))
        self._eyes_episode = self._eyes_closed_since = None
        return event

    def _instant(self, kind: str, detail: str, start_ns: int, end_ns: int, peak: float,
                 mean: float) -> ExpressionEvent:
        return ExpressionEvent(next(self._ids), self.face_id, kind, EventPhase.INSTANT, detail, start_ns, end_ns,
                               (end_ns - start_ns) / NS, peak, mean)
