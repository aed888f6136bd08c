"""The expression pipeline on a real face: state per track, lost and vanished tracks closed, bounded memory."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from conftest import media_path
from fer_perception.au.estimators import create_au_estimator
from fer_perception.expression_pipeline import ExpressionPipeline, pipeline_from_config
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig
from fer_perception.paths import config_path
from fer_perception.types import EMOTION_LABELS, EventPhase, FaceFrame

NS = 1_000_000_000


@pytest.fixture(scope="module")
def smiling_face():
    image = cv2.cvtColor(cv2.imread(str(media_path("single_face.jpg"))), cv2.COLOR_BGR2RGB)
    front_end = FaceFrontEnd(FaceFrontEndConfig(min_hits=1))
    try:
        return front_end.process(image, 0).faces[0]
    finally:
        front_end.close()


def frames_of(face, track_id: str, seconds: float, start_s: float = 0.0, fps: float = 30.0):
    face.track_id = track_id
    return [FaceFrame(round((start_s + i / fps) * NS), 572, 562, [face]) for i in range(int(seconds * fps))]


def test_a_smile_gives_appeared_smile_and_emotion_events_and_a_lost_track_closes_them(smiling_face):
    pipeline = pipeline_from_config(None)
    events = []
    for frame in frames_of(smiling_face, "a", 2.0):
        result = pipeline.process(frame)
        events += result.events
    expression = result.expressions[0]
    assert expression.emotion is not None and expression.label_smoothed == 3, "FACS mapping reads happy"
    kinds = {(e.kind, e.phase) for e in events}
    assert ("face_appeared", EventPhase.INSTANT) in kinds and ("smile", EventPhase.ONSET) in kinds
    assert ("emotion", EventPhase.ONSET) in kinds
    closing = pipeline.process(FaceFrame(3 * NS, 572, 562, [], lost=["a"])).events
    onsets = {e.event_id for e in events if e.phase == EventPhase.ONSET}
    assert onsets == {e.event_id for e in closing if e.phase == EventPhase.OFFSET}
    assert closing[-1].kind == "face_lost" and pipeline.tracks == {}


def test_a_track_that_vanishes_without_a_lost_message_is_dropped_after_the_timeout(smiling_face):
    pipeline = pipeline_from_config(None)
    for frame in frames_of(smiling_face, "b", 1.0):
        pipeline.process(frame)
    assert "b" in pipeline.tracks
    assert pipeline.process(FaceFrame(2 * NS, 572, 562, [])).events == [], "within the timeout nothing happens"
    late = pipeline.process(FaceFrame(10 * NS, 572, 562, [])).events
    assert late and late[-1].kind == "face_lost" and pipeline.tracks == {}


def test_memory_stays_bounded_when_many_people_come_and_go(smiling_face):
    pipeline = pipeline_from_config(None)
    for person in range(50):
        for frame in frames_of(smiling_face, f"p{person}", 0.2, start_s=person):
            pipeline.process(frame)
        pipeline.process(FaceFrame(round((person + 0.5) * NS), 572, 562, [], lost=[f"p{person}"]))
    assert pipeline.tracks == {} and pipeline.au_estimator.tracks == 0


def test_shutdown_closes_every_open_episode(smiling_face):
    pipeline = pipeline_from_config(None)
    events = []
    for frame in frames_of(smiling_face, "c", 2.0):
        events += pipeline.process(frame).events
    closing = pipeline.close(5 * NS)
    onsets = {e.event_id for e in events if e.phase == EventPhase.ONSET}
    assert onsets and onsets == {e.event_id for e in closing}


def test_time_alone_expires_a_track_when_no_frame_comes(smiling_face):
    pipeline = pipeline_from_config(None)
    for frame in frames_of(smiling_face, "c", 1.0):
        pipeline.process(frame)
    assert pipeline.expire(2 * NS) == [], "within the timeout nothing happens"
    late = pipeline.expire(10 * NS)
    assert [e.kind for e in late][-1] == "face_lost" and pipeline.tracks == {}
    assert all(e.end_ns == 10 * NS for e in late if e.phase == EventPhase.OFFSET)


def test_stamps_going_back_close_every_track_at_the_last_stamp_and_restart(smiling_face):
    pipeline = pipeline_from_config(None)
    events = []
    for frame in frames_of(smiling_face, "d", 1.0, start_s=20.0):
        events += pipeline.process(frame).events
    last_ns = pipeline.last_stamp_ns
    restarted = pipeline.process(frames_of(smiling_face, "d", 0.1, start_s=5.0)[0])
    assert restarted.restarted_after_ns == last_ns
    closing = [e for e in restarted.events if e.phase in (EventPhase.OFFSET, EventPhase.INSTANT)]
    assert {e.kind for e in closing} >= {"face_lost", "face_appeared"}
    lost = next(e for e in closing if e.kind == "face_lost")
    assert lost.start_ns == last_ns
    onsets = {e.event_id for e in events if e.phase == EventPhase.ONSET}
    assert onsets <= {e.event_id for e in closing if e.phase == EventPhase.OFFSET}
    assert all(e.duration_s >= 0 for e in [*events, *restarted.events])
    assert pipeline.process(frames_of(smiling_face, "d", 0.1, start_s=5.1)[0]).restarted_after_ns is None


class FixedProbabilities:
    """A stand-in for the learned classifier that gives every crop the same probabilities (the test is about the
    cascade's path through smoothing and events, not about a network)."""

    def __init__(self, probabilities: list[float]):
        self.probabilities = np.array(probabilities)

    def predict(self, crops):
        return np.tile(self.probabilities, (len(crops), 1))


@pytest.mark.parametrize("coarse_to_fine", [False, True])
def test_coarse_to_fine_decides_the_smoothed_label_and_the_emotion_episodes(smiling_face, coarse_to_fine):
    split_negative = [0.32, 0.05, 0.05, 0.10, 0.28, 0.05, 0.15]  # angry, disgust, fear, happy, sad, surprise, neutral
    emotion = yaml.safe_load(config_path("emotion.yaml").read_text())
    emotion.update(coarse_to_fine=coarse_to_fine, fusion={"learned": 1.0, "facs": 0.0})
    pipeline = ExpressionPipeline(create_au_estimator(config_path("action_units.yaml")),
                                  FixedProbabilities(split_negative), emotion,
                                  yaml.safe_load(config_path("expression.yaml").read_text()))
    crop = np.zeros((112, 112, 3), np.uint8)
    events = []
    for frame in frames_of(smiling_face, "e", 2.0):
        result = pipeline.process(frame, [crop])
        events += result.events
    expression = result.expressions[0]
    emotions = [e for e in events if e.kind == "emotion" and e.phase == EventPhase.ONSET]
    assert expression.label == expression.label_smoothed == EMOTION_LABELS.index("angry")
    if coarse_to_fine:  # the negative group (0.70) wins; sad, within 0.55 / 0.70 of angry, shares its evidence
        assert expression.confidence == pytest.approx(0.70) and [e.detail for e in emotions] == ["angry", "sad"]
    else:  # flat: angry leads with 0.32, below the episode threshold
        assert expression.confidence == pytest.approx(0.32) and emotions == []
