"""Action units and eye closure from the face mesh: pose invariance, calibration, closure, range and mask,
on real faces."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import data_dir, media_path
from fer_perception.au.calibration import CalibrationConfig, PersonBaseline
from fer_perception.au.dataset_mesh import face_meshes
from fer_perception.au.estimators import au_estimator_names, create_au_estimator
from fer_perception.au.features import FEATURE_INDEX, compute_features
from fer_perception.au.features import LEFT_INNER_BROW, RIGHT_INNER_BROW
from fer_perception.au.features import LEFT_LOWER_LID, LEFT_UPPER_LID, RIGHT_LOWER_LID, RIGHT_UPPER_LID
from fer_perception.au.geometry import GeometricAUEstimator, GeometryConfig
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig
from fer_perception.face.head_pose import estimate_head_pose
from fer_perception.paths import config_path
from fer_perception.types import AU_NUMBERS

AU12 = AU_NUMBERS.index(12)


@pytest.fixture(scope="module")
def smiling_mesh() -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(media_path("single_face.jpg"))), cv2.COLOR_BGR2RGB)
    front_end = FaceFrontEnd(FaceFrontEndConfig(min_hits=1))
    try:
        return front_end.process(image, 0).faces[0].landmarks.astype(np.float64)
    finally:
        front_end.close()


@pytest.fixture
def estimator() -> GeometricAUEstimator:
    return GeometricAUEstimator(GeometryConfig.from_yaml(config_path("action_units.yaml")))


def rotated(landmarks: np.ndarray, yaw_deg: float, scale: float = 1.0) -> np.ndarray:
    """The mesh turned about the vertical axis through its centre (a head turn), and scaled."""
    angle = np.radians(yaw_deg)
    rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    centre = landmarks.mean(axis=0)
    return (landmarks - centre) @ rotation.T * scale + centre


def with_closed_eyes(landmarks: np.ndarray) -> np.ndarray:
    closed = landmarks.copy()
    for upper, lower in ((RIGHT_UPPER_LID, RIGHT_LOWER_LID), (LEFT_UPPER_LID, LEFT_LOWER_LID)):
        closed[list(upper), 1] = landmarks[list(lower), 1].mean() - 0.5
    return closed


def test_features_do_not_change_with_head_turn_or_face_size(smiling_mesh):
    reference, distance = compute_features(smiling_mesh)
    for yaw, scale in ((20.0, 1.0), (-25.0, 0.5), (0.0, 2.0)):
        moved, moved_distance = compute_features(rotated(smiling_mesh, yaw, scale))
        assert np.abs(moved - reference).max() < 0.03, (yaw, scale)
        assert moved_distance == pytest.approx(distance * scale, rel=0.02)


def test_intensities_are_in_range_and_a_far_turned_head_is_not_estimated(smiling_mesh, estimator):
    frontal = estimator.estimate("f0", smiling_mesh, estimate_head_pose(smiling_mesh))
    assert frontal.estimated.all() and frontal.eyes_estimated
    assert ((frontal.intensity >= 0) & (frontal.intensity <= 5)).all()
    assert ((frontal.confidence > 0) & (frontal.confidence <= 1)).all()
    turned = rotated(smiling_mesh, 60.0)
    profile = estimator.estimate("f1", turned, estimate_head_pose(turned))
    assert not profile.estimated.any() and not profile.eyes_estimated
    assert (profile.intensity == 0).all() and profile.value(12) is None


def test_smiling_face_scores_au12_far_above_neutral_faces(smiling_mesh, estimator):
    data = np.load(data_dir() / "fer2013" / "fer2013.npz") if (data_dir() / "fer2013" / "fer2013.npz").is_file() \
        else pytest.fail(f"test data missing: {data_dir() / 'fer2013' / 'fer2013.npz'}")
    neutral = data["images"][(data["split"] == 2) & (data["labels"] == list(data["classes"]).index("neutral"))][:60]
    meshes, found = face_meshes(neutral, quiet=True)
    neutral_au12 = [estimator.estimate(f"n{i}", meshes[i], estimate_head_pose(meshes[i])).intensity[AU12]
                    for i in np.flatnonzero(found)]
    smile = estimator.estimate("smile", smiling_mesh, estimate_head_pose(smiling_mesh)).intensity[AU12]
    assert len(neutral_au12) >= 40
    assert smile >= 2.5, f"the smile reads AU12={smile:.2f}"
    assert smile > np.percentile(neutral_au12, 90) + 1.5, (smile, np.percentile(neutral_au12, 90))


def test_closed_eyes_give_closure_and_au43_but_no_cheek_raise(smiling_mesh, estimator):
    pose = estimate_head_pose(smiling_mesh)
    estimator.set_neutral("f0", [smiling_mesh])  # this person's face at rest is this face: calibrated
    opened = estimator.estimate("f0", smiling_mesh, pose)
    closed = estimator.estimate("f0", with_closed_eyes(smiling_mesh), pose)
    assert opened.left_eye_closure < 0.15 and opened.right_eye_closure < 0.15 and opened.value(43) < 0.3
    assert closed.left_eye_closure > 0.85 and closed.right_eye_closure > 0.85
    assert closed.value(43) > 4.0
    assert closed.value(6) == pytest.approx(opened.value(6), abs=0.1), "AU6 must not rise when the eyes just close"
    assert opened.calibration == closed.calibration == 1.0


def with_knitted_raised_inner_brows(landmarks: np.ndarray, iod_px: float) -> np.ndarray:
    """Grief brows: the inner brow ends pulled together (AU4) and up (AU1)."""
    moved = landmarks.copy()
    for points, towards_midline in ((RIGHT_INNER_BROW, 1.0), (LEFT_INNER_BROW, -1.0)):
        moved[list(points), 0] += towards_midline * 0.05 * iod_px * np.sign(landmarks[263, 0] - landmarks[33, 0])
        moved[list(points), 1] -= 0.05 * iod_px
    return moved


def test_knitted_brows_read_as_au4_even_while_the_inner_brows_rise(smiling_mesh, estimator):
    pose = estimate_head_pose(smiling_mesh)
    estimator.set_neutral("f0", [smiling_mesh])
    iod_px = float(np.linalg.norm(smiling_mesh[33, :2] - smiling_mesh[263, :2]))
    grief = estimator.estimate("f0", with_knitted_raised_inner_brows(smiling_mesh, iod_px), pose)
    assert grief.value(1) > 1.0, grief.value(1)
    assert grief.value(4) > 1.0, "knitting must read as AU4 although the inner brows rise (AU1 + AU4)"


def test_a_persistent_personal_trait_is_calibrated_away_but_a_sustained_smile_is_not(smiling_mesh, estimator):
    pose = estimate_head_pose(smiling_mesh)
    first = estimator.estimate("smiler", smiling_mesh, pose, stamp_s=0.0, neutral_probability=0.0).intensity[AU12]
    for frame in range(150):
        last = estimator.estimate("smiler", smiling_mesh, pose, stamp_s=frame / 30,
                                  neutral_probability=0.0).intensity[AU12]
    assert last == pytest.approx(first, abs=0.3), "a strong smile must not become the person's neutral face"
    assert estimator.baseline("smiler").calibration == 0.0
    trait = estimator.baseline("trait")
    trait_features = trait.prior.copy()
    trait_features[FEATURE_INDEX["mouth_width"]] += 0.03
    for frame in range(150):
        trait.update(trait_features, activity=0.5, stamp_s=frame / 30, neutral_probability=0.9)
    assert trait.value[FEATURE_INDEX["mouth_width"]] == pytest.approx(trait_features[FEATURE_INDEX["mouth_width"]],
                                                                      abs=0.005)
    assert trait.calibration > 0.85
    tracks = estimator.tracks
    estimator.drop("trait")
    assert estimator.tracks == tracks - 1


CALIBRATION = CalibrationConfig(prior_weight_frames=10, window_frames=50, activity_max=1.0,
                                neutral_probability_min=0.6, stable_s=0.5, max_shift_spreads=2.0)


def fed(baseline: PersonBaseline, features: list[float], seconds: float, start_s: float = 0.0,
        activity: float = 0.2, neutral_probability: float | None = 0.9) -> float:
    """Feed ``seconds`` of 10 fps frames of ``features``; returns the next free stamp."""
    for frame in range(round(seconds * 10)):
        baseline.update(np.array(features), activity, start_s + frame / 10, neutral_probability)
    return start_s + seconds


def test_person_baseline_blends_the_prior_once_a_stable_neutral_stretch_is_seen():
    baseline = PersonBaseline(prior=np.zeros(2), spread=np.ones(2), config=CALIBRATION)
    fed(baseline, [1.0, 2.0], 1.0)
    assert baseline.rest_frames == 10 and baseline.value == pytest.approx([0.5, 1.0])
    assert baseline.calibration == pytest.approx(0.5)
    fed(baseline, [100.0, 100.0], 0.2, start_s=1.0, activity=3.0)  # an expression: ignored
    assert baseline.rest_frames == 10 and baseline.value == pytest.approx([0.5, 1.0])


def test_person_baseline_needs_confident_neutral_agreement_over_time_and_stays_bounded():
    baseline = PersonBaseline(prior=np.zeros(2), spread=np.ones(2), config=CALIBRATION)
    start = fed(baseline, [1.0, 1.0], 0.4)  # shorter than stable_s ...
    start = fed(baseline, [1.0, 1.0], 0.1, start, activity=2.0)  # ... then broken by an expression
    start = fed(baseline, [1.0, 1.0], 0.4, start)
    assert baseline.rest_frames == 0 and baseline.calibration == 0.0
    fed(baseline, [1.0, 1.0], 2.0, start, neutral_probability=0.3)  # the classifier is not sure it is neutral
    assert baseline.rest_frames == 0
    far = PersonBaseline(prior=np.zeros(2), spread=np.array([0.1, 1.0]), config=CALIBRATION)
    fed(far, [5.0, 1.0], 5.0)  # a "neutral" far outside the population: moves at most 2 spreads
    assert far.value[0] == pytest.approx(0.2 * 50 / 60) and far.value[1] == pytest.approx(50 / 60)


def test_a_captured_neutral_replaces_the_prior_and_is_kept():
    baseline = PersonBaseline(prior=np.zeros(2), spread=np.ones(2), config=CALIBRATION)
    with pytest.raises(ValueError, match="positive duration"):
        baseline.capture(0.0)
    baseline.capture(0.5)
    assert baseline.capturing
    start = fed(baseline, [3.0, -3.0], 0.6, start_s=2.0, activity=4.0, neutral_probability=0.0)
    assert not baseline.capturing and baseline.captured and baseline.calibration == 1.0
    assert baseline.value == pytest.approx([3.0, -3.0])  # explicit: neither gated nor bounded
    fed(baseline, [0.0, 0.0], 2.0, start)
    assert baseline.value == pytest.approx([3.0, -3.0])


def test_config_errors_are_clear(tmp_path):
    text = config_path("action_units.yaml").read_text().replace("inner_brow_height: 1.0", "inner_brow_hieght: 1.0", 1)
    broken = tmp_path / "au.yaml"
    broken.write_text(text)
    with pytest.raises(ValueError, match="unknown features"):
        GeometryConfig.from_yaml(broken)
    with pytest.raises(ValueError, match="geometry"):
        create_au_estimator(config_path("action_units.yaml"), "facet")
    assert "geometry" in au_estimator_names()


@pytest.mark.parametrize("clip", ["single_face.mp4", "noface_face.mov"])
def test_real_clips_stay_in_range_and_honour_the_mask(clip, estimator):
    capture = cv2.VideoCapture(str(media_path(clip)))
    front_end = FaceFrontEnd(FaceFrontEndConfig(deterministic_ids=True))
    seen = 0
    try:
        index = 0
        while (result := capture.read())[0]:
            frame = front_end.process(cv2.cvtColor(result[1], cv2.COLOR_BGR2RGB), index * 33_000_000)
            index += 1
            for face in frame.faces:
                units = estimator.estimate(face.track_id, face.landmarks, face.head_pose)
                assert ((units.intensity >= 0) & (units.intensity <= 5)).all()
                assert (units.intensity[~units.estimated] == 0).all()
                assert 0 <= units.left_eye_closure <= 1 and 0 <= units.right_eye_closure <= 1
                seen += 1
    finally:
        front_end.close()
    assert seen > 50
