"""Smoothing and events on synthetic streams with exact expected outputs, at any frame rate."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from fer_perception.events import EpisodeDetector, EpisodeThresholds, EventConfig, EyeThresholds, FaceEvents
from fer_perception.smoothing import ExponentialSmoother, FrameAttentionSmoother, LabelHysteresis
from fer_perception.types import AU_NUMBERS, ActionUnits, EMOTION_LABELS, EventPhase

NS = 1_000_000_000
EPISODE = EpisodeThresholds(enter=0.6, exit=0.4, min_duration_s=0.5, merge_gap_s=0.3)


def stream(fps: float, seconds: float, signal) -> list[tuple[int, float]]:
    return [(round(i / fps * NS), signal(i / fps)) for i in range(int(seconds * fps))]


def run_detector(samples, thresholds=EPISODE):
    detector = EpisodeDetector(thresholds)
    onsets, ends = [], []
    for stamp, value in samples:
        onset, ended = detector.update(value, stamp)
        if onset:
            onsets.append((stamp, detector.start_ns))
        if ended is not None:
            ends.append(ended)
    return detector, onsets, ends


def test_a_step_gives_one_onset_after_the_minimum_duration_and_one_offset_after_the_drop():
    detector, onsets, ends = run_detector(stream(30, 4, lambda t: 0.9 if 1.0 <= t < 2.5 else 0.1))
    assert len(onsets) == 1 and len(ends) == 1
    emitted_at, start = onsets[0]
    assert start == 1 * NS and emitted_at / NS == pytest.approx(1.5, abs=1 / 30)
    assert ends[0] / NS == pytest.approx(2.5, abs=1 / 30)
    assert detector.peak == pytest.approx(0.9) and detector.mean == pytest.approx(0.9)


def test_a_short_gap_merges_and_a_long_gap_splits():
    _, onsets, ends = run_detector(stream(30, 5, lambda t: 0.1 if 2.0 <= t < 2.2 or t < 1 or t >= 4 else 0.9))
    assert len(onsets) == 1 and len(ends) == 1 and ends[0] / NS == pytest.approx(4.0, abs=1 / 30)
    _, onsets, ends = run_detector(stream(30, 5, lambda t: 0.1 if 2.0 <= t < 2.6 or t < 1 or t >= 4 else 0.9))
    assert len(onsets) == 2 and len(ends) == 2


def test_a_blip_shorter_than_the_minimum_duration_is_no_episode():
    _, onsets, ends = run_detector(stream(30, 3, lambda t: 0.9 if 1.0 <= t < 1.3 else 0.1))
    assert onsets == [] and ends == []


def test_close_ends_an_open_episode():
    detector, onsets, _ = run_detector(stream(30, 2, lambda t: 0.9))
    assert len(onsets) == 1 and detector.close(5 * NS) == 5 * NS and detector.close(6 * NS) is None


def test_thresholds_are_validated():
    with pytest.raises(ValueError):
        EpisodeThresholds(enter=0.3, exit=0.5, min_duration_s=0.1, merge_gap_s=0.1)


def test_exponential_smoothing_is_frame_rate_independent():
    results = []
    for fps in (15, 30):
        smoother = ExponentialSmoother(tau_s=0.5)
        for stamp, value in stream(fps, 2, lambda t: 1.0 if t >= 0.5 else 0.0):
            out = smoother.update(np.array([value]), stamp / NS)
        results.append(float(out[0]))
    expected = 1 - np.exp(-(2 - 1 / 15 - 0.5) / 0.5)
    assert results[0] == pytest.approx(results[1], abs=0.02) and results[1] == pytest.approx(expected, abs=0.05)


def test_frame_attention_weights_frames_by_quality_within_the_window():
    smoother = FrameAttentionSmoother(window_s=1.0)
    smoother.update(np.array([1.0, 0.0]), 0.0, quality=0.9)
    out = smoother.update(np.array([0.0, 1.0]), 0.5, quality=0.1)
    assert out == pytest.approx([0.9, 0.1])
    out = smoother.update(np.array([0.0, 1.0]), 2.0, quality=0.1)
    assert out == pytest.approx([0.0, 1.0]), "frames older than the window are forgotten"


def test_a_flicker_between_close_classes_does_not_change_the_label():
    label = LabelHysteresis(margin=0.1, min_dwell_s=0.3)
    flips = 0
    last = None
    for i in range(90):
        probabilities = np.array([0.45, 0.55]) if i % 2 else np.array([0.55, 0.45])
        current = label.update(probabilities, i / 30)
        flips += last is not None and current != last
        last = current
    assert flips == 0
    for i in range(90, 110):
        current = label.update(np.array([0.1, 0.9]), i / 30)
    assert current == 1, "a clear, lasting lead changes the label"


def eye_units(closure: float, au12: float = 0.0, au6: float = 0.0) -> ActionUnits:
    intensity = np.zeros(len(AU_NUMBERS))
    intensity[AU_NUMBERS.index(12)] = au12
    intensity[AU_NUMBERS.index(6)] = au6
    return ActionUnits(intensity, np.ones(len(AU_NUMBERS), bool), np.ones(len(AU_NUMBERS)),
                       left_eye_closure=closure, right_eye_closure=closure, eyes_estimated=True)


CONFIG = EventConfig(emotion=EPISODE, smile=EpisodeThresholds(1.5, 1.0, 0.3, 0.3), smile_felt_au6=1.0,
                     brow_raise=EpisodeThresholds(1.5, 1.0, 0.3, 0.3), frown=EpisodeThresholds(1.5, 1.0, 0.3, 0.3),
                     jaw_drop=EpisodeThresholds(1.5, 1.0, 0.3, 0.3), eyes=EyeThresholds(0.6, 0.4, 1.0))


def face_events(fps: float, seconds: float, closure, smile, happy) -> tuple[list, FaceEvents]:
    events = FaceEvents("f0", CONFIG, itertools.count())
    out = []
    happy_index = EMOTION_LABELS.index("happy")
    for i in range(int(seconds * fps)):
        t = i / fps
        stamp = round(t * NS)
        units = eye_units(closure(t), au12=smile(t), au6=2.0)
        probabilities = np.full(len(EMOTION_LABELS), 0.05)
        probabilities[happy_index] = happy(t)
        out += events.update(stamp, probabilities, units.intensity, units.estimated, units)
    return out, events


SCENARIO = dict(closure=lambda t: 1.0 if 1.0 <= t < 1.2 or 3.0 <= t < 4.5 else 0.0,
                smile=lambda t: 3.0 if 0.5 <= t < 2.5 else 0.0,
                happy=lambda t: 0.9 if 0.5 <= t < 5.5 else 0.1)


def summary(events):
    return [(e.kind, e.phase, e.detail, round(e.start_ns / NS, 1), round(e.end_ns / NS, 1)) for e in events]


def test_events_of_a_scenario_and_the_same_at_15_and_30_fps():
    at30, state = face_events(30, 6, **SCENARIO)
    at15, _ = face_events(15, 6, **SCENARIO)
    assert summary(at30) == summary(at15)
    kinds = [(e.kind, e.phase) for e in at30]
    assert kinds.count(("blink", EventPhase.INSTANT)) == 1
    assert kinds.count(("eyes_closed", EventPhase.ONSET)) == 1 and kinds.count(("eyes_closed", EventPhase.OFFSET)) == 1
    smile = [e for e in at30 if e.kind == "smile"]
    assert [e.phase for e in smile] == [EventPhase.ONSET, EventPhase.OFFSET]
    assert smile[0].event_id == smile[1].event_id and smile[1].detail == "felt"
    assert smile[1].duration_s == pytest.approx(2.0, abs=0.05) and smile[1].peak == pytest.approx(3.0)
    eyes = [e for e in at30 if e.kind == "eyes_closed"]
    assert eyes[1].duration_s == pytest.approx(1.5, abs=0.05)
    assert not state.close(6 * NS), "everything already closed"


def test_a_lost_track_closes_its_open_episodes():
    events, state = face_events(30, 3, closure=lambda t: 1.0 if t >= 1.0 else 0.0, smile=lambda t: 3.0,
                                happy=lambda t: 0.9)
    onsets = {e.event_id for e in events if e.phase == EventPhase.ONSET}
    closing = state.lost(3 * NS, confidence=0.9)
    offsets = {e.event_id for e in closing if e.phase == EventPhase.OFFSET}
    assert onsets and onsets == offsets
    assert closing[-1].kind == "face_lost" and all(e.end_ns == 3 * NS for e in closing)

