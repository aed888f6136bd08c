"""Tracker behaviour on synthetic boxes: confirmation, coasting, crossing, loss, ids."""
from __future__ import annotations

import random
import re

from fer_perception.face.tracker import FaceTracker, Observation
from fer_perception.types import BoundingBox


def make_tracker(**overrides) -> FaceTracker:
    settings = dict(min_hits=3, max_misses=2, iou_threshold=0.3, max_centre_distance=0.5, max_tracks=5,
                    deterministic_ids=True)
    settings.update(overrides)
    return FaceTracker(**settings)


def face(x: float, y: float, size: float = 80.0, score: float = 0.9) -> Observation:
    return Observation(box=BoundingBox(x, y, size, size), score=score)


def visible_ids(update) -> list[str]:
    return [track.track_id for track in update.visible]


def test_face_confirmed_after_min_hits_frames():
    tracker = make_tracker()
    assert visible_ids(tracker.update([face(100, 100)])) == []
    assert visible_ids(tracker.update([face(102, 100)])) == []
    assert visible_ids(tracker.update([face(104, 100)])) == ["f0"]


def test_single_frame_flicker_never_confirms():
    tracker = make_tracker()
    for frame in range(30):
        update = tracker.update([face(300, 200)] if frame % 2 == 0 else [])
        assert update.visible == [] and update.lost == []


def test_burst_shorter_than_min_hits_never_confirms():
    tracker = make_tracker(min_hits=3)
    for observations in ([face(50, 50)], [face(51, 50)], [], [], [face(50, 50)], [face(52, 51)], []):
        update = tracker.update(observations)
        assert update.visible == [] and update.lost == []


def test_one_missed_frame_keeps_the_id():
    tracker = make_tracker(max_misses=1)
    for step in range(4):
        tracker.update([face(100 + 5 * step, 100)])
    assert visible_ids(tracker.update([])) == []
    update = tracker.update([face(130, 100)])
    assert visible_ids(update) == ["f0"] and update.lost == []


def test_crossing_faces_keep_their_ids():
    tracker = make_tracker(max_misses=3)
    rng = random.Random(0)
    left_id = right_id = None
    for step in range(40):
        left = face(20 + 12 * step, 200 + step, score=0.9)
        right = face(500 - 12 * step, 230 - step, score=0.8)
        observations = [left, right]
        rng.shuffle(observations)
        update = tracker.update(observations)
        by_observation = {id(track.observation): track.track_id for track in update.visible}
        if step >= 2:
            left_id = left_id or by_observation[id(left)]
            right_id = right_id or by_observation[id(right)]
            assert by_observation[id(left)] == left_id
            assert by_observation[id(right)] == right_id
    assert left_id != right_id


def test_lost_track_reported_exactly_once():
    tracker = make_tracker(max_misses=2)
    for _ in range(3):
        tracker.update([face(10, 10)])
    lost = [[track.track_id for track in tracker.update([]).lost] for _ in range(6)]
    assert lost == [[], [], ["f0"], [], [], []]
    assert tracker.tracks == []


def test_tentative_tracks_are_never_reported_lost():
    tracker = make_tracker()
    tracker.update([face(10, 10)])
    tracker.update([face(10, 10)])
    assert all(tracker.update([]).lost == [] for _ in range(5))


def test_ids_follow_confirmation_order():
    tracker = make_tracker(min_hits=2)
    tracker.update([face(400, 10)])
    tracker.update([face(400, 10), face(10, 10)])
    update = tracker.update([face(400, 10), face(10, 10)])
    assert sorted(visible_ids(update)) == ["f0", "f1"]
    assert next(t for t in update.visible if t.box.x == 400).track_id == "f0"


def test_live_ids_are_numbered_with_a_tag_that_changes_between_runs():
    tracker = make_tracker(deterministic_ids=False, min_hits=1)
    ids = visible_ids(tracker.update([face(x, 10) for x in (0, 200, 400)]))
    tag = ids[0].split("-")[1]
    assert ids == [f"f0-{tag}", f"f1-{tag}", f"f2-{tag}"]
    assert re.fullmatch(r"[a-hj-km-np-z2-9]{3}", tag)
    # A restarted node (a new tracker) counts from f0 again, under another tag: 20 runs, hardly two alike.
    tags = {visible_ids(make_tracker(deterministic_ids=False, min_hits=1).update([face(0, 10)]))[0]
            for _ in range(20)}
    assert len(tags) >= 18


def test_number_of_tracks_is_capped():
    tracker = make_tracker(max_tracks=2, min_hits=1)
    update = tracker.update([face(0, 0, score=0.5), face(200, 0, score=0.9), face(400, 0, score=0.7)])
    assert sorted(track.box.x for track in update.visible) == [200, 400]


def test_assigned_observations_skip_association():
    tracker = make_tracker(min_hits=1)
    first = tracker.update([face(0, 0), face(300, 0)])
    key_of = {track.box.x: track.key for track in first.visible}
    # The mesh of the left track was followed to x=20; a detection near the right face comes in unassigned.
    update = tracker.update([face(305, 0)], assigned={key_of[0]: face(20, 0)})
    positions = {track.track_id: track.box.x for track in update.visible}
    assert positions == {"f0": 20, "f1": 305}


def test_far_jump_is_a_new_face():
    tracker = make_tracker(min_hits=1, max_misses=0)
    tracker.update([face(0, 0)])
    update = tracker.update([face(500, 300)])
    assert visible_ids(update) == ["f1"]
    assert [track.track_id for track in update.lost] == ["f0"]
