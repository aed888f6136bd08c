"""Face front end on real media: detection, mesh, tracking ids, aligned crops, pose, config.

Media come from ``$FER_DATA_DIR/media`` (default ``<repo>/../shared/data/media``).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_perception.face import (Detection, FaceDetector, FaceFrontEnd, FaceFrontEndConfig, create_detector,
                                 detector_names, register_detector)
from fer_perception.face.head_pose import estimate_head_pose
from fer_perception.face.mesh_points import eye_centres
from fer_perception.types import FaceFrame

REPO_ROOT = Path(__file__).resolve().parents[1]
MEDIA_DIR = Path(os.environ.get("FER_DATA_DIR", REPO_ROOT.parent / "shared" / "data")) / "media"


def media(name: str) -> Path:
    path = MEDIA_DIR / name
    if not path.is_file():
        pytest.fail(f"test media {path} is missing; point FER_DATA_DIR at the folder that holds media/")
    return path


def read_image(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(media(name))), cv2.COLOR_BGR2RGB)


def read_video(name: str) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(media(name)))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def run(front_end: FaceFrontEnd, frames) -> list[FaceFrame]:
    return [front_end.process(frame, stamp_ns=index * 33_333_333) for index, frame in enumerate(frames)]


def ids(frame: FaceFrame) -> list[str]:
    return [face.track_id for face in frame.faces]


@pytest.fixture
def front_end_factory():
    created = []

    def make(**overrides) -> FaceFrontEnd:
        created.append(FaceFrontEnd(FaceFrontEndConfig(deterministic_ids=True, **overrides)))
        return created[-1]

    yield make
    for front_end in created:
        front_end.close()


# --- group photo ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def group_result():
    front_end = FaceFrontEnd(FaceFrontEndConfig(deterministic_ids=True))
    image = read_image("multi_face.jpg")
    frames = run(front_end, [image] * front_end.config.min_hits)
    crops = {face.track_id: front_end.crop(image, face) for face in frames[-1].faces}
    front_end.close()
    return image, frames, crops


def test_group_photo_finds_all_five_faces_with_distinct_ids(group_result):
    _, frames, _ = group_result
    assert all(frame.faces == [] for frame in frames[:-1])
    faces = frames[-1].faces
    assert sorted(ids(frames[-1])) == ["f0", "f1", "f2", "f3", "f4"]
    for index, face in enumerate(faces):
        assert face.landmarks.shape == (478, 3)
        assert 0.0 < face.detection_confidence <= 1.0
        assert 0.0 < face.quality.score <= 1.0
        for other in faces[index + 1:]:
            assert face.box.iou(other.box) < 0.05, "two ids on one person"


def test_group_photo_crops_are_upright_and_unstretched(group_result):
    image, frames, crops = group_result
    for face in frames[-1].faces:
        crop = crops[face.track_id]
        assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
        linear = face.crop_transform[:, :2]
        scale_x, scale_y = np.linalg.norm(linear, axis=0)
        assert scale_x == pytest.approx(scale_y, rel=1e-9)
        assert float(linear[:, 0] @ linear[:, 1]) == pytest.approx(0.0, abs=1e-9)
        eyes = eye_centres(face.landmarks) @ linear.T + face.crop_transform[:, 2]
        assert abs(eyes[1, 1] - eyes[0, 1]) < 0.5, "eyes not level"
        assert eyes[0, 0] < eyes[1, 0], "right eye must stay on the crop's left"
        nose = face.landmarks[1, :2] @ linear.T + face.crop_transform[:, 2]
        assert nose[1] > eyes[:, 1].mean(), "face upside down"
        assert crop.mean() > 40, "crop shows no face"


# --- videos -----------------------------------------------------------------------------------

def test_single_face_video_keeps_one_id(front_end_factory):
    frames = run(front_end_factory(), read_video("single_face.mp4"))
    assert len(frames) >= 70
    assert {track_id for frame in frames for track_id in ids(frame)} == {"f0"}
    min_hits = FaceFrontEndConfig().min_hits
    shown = sum(1 for frame in frames[min_hits - 1:] if ids(frame) == ["f0"])
    assert shown >= 0.95 * (len(frames) - min_hits + 1)
    assert all(frame.lost == [] for frame in frames)


def test_face_appearing_late_gets_exactly_one_id(front_end_factory):
    frames = run(front_end_factory(), read_video("noface_face.mov"))
    assert all(frame.faces == [] for frame in frames[:80])
    assert {track_id for frame in frames for track_id in ids(frame)} == {"f0"}
    with_face = frames[110:]  # the face is in view from about frame 96; the clip's last frame is black
    assert sum(ids(frame) == ["f0"] for frame in with_face) >= 0.95 * len(with_face)


def test_no_face_video_confirms_nothing(front_end_factory):
    frames = run(front_end_factory(), read_video("no_face.mp4"))
    assert len(frames) >= 90
    assert all(frame.faces == [] and frame.lost == [] for frame in frames)


def test_face_that_leaves_is_reported_lost_once_and_a_returning_face_is_new(front_end_factory):
    front_end = front_end_factory(max_misses=3, max_faces=1)
    image = read_image("single_face.jpg")
    blank = np.zeros_like(image)
    returning = front_end.config.detect_interval + front_end.config.min_hits
    frames = run(front_end, [image] * 4 + [blank] * 8 + [image] * returning)
    assert ids(frames[3]) == ["f0"]
    assert [frame.lost for frame in frames[4:12]] == [[], [], [], ["f0"], [], [], [], []]
    # With no track left the detector runs every detect_interval frames.
    assert {track_id for frame in frames[12:] for track_id in ids(frame)} == {"f1"}
    assert ids(frames[-1]) == ["f1"]


def test_crossing_faces_keep_their_ids(front_end_factory):
    """Two faces slide past each other, one partly covering the other."""
    group = read_image("multi_face.jpg")
    left_face, right_face = group[290:460, 500:670], group[278:448, 652:822]
    front_end = front_end_factory()
    history = []
    for step in range(56):
        frame = np.full((480, 640, 3), 90, np.uint8)
        left_x, right_x = 8 * step, 470 - 8 * step
        frame[100:270, left_x:left_x + 170] = left_face
        frame[160:330, right_x:right_x + 170] = right_face
        result = front_end.process(frame, step)
        history.append({face.track_id: face.box.x + face.box.width / 2 - (left_x + 85) for face in result.faces})
        assert result.lost == []
    assert set().union(*history) == {"f0", "f1"}
    left_id = min(history[5], key=lambda track_id: abs(history[5][track_id]))
    for offsets in history:
        if left_id in offsets:
            assert abs(offsets[left_id]) < 40, "the left face's id moved to the other face"


def test_detector_runs_only_on_schedule(front_end_factory):
    calls = []

    @register_detector("test_counting_full_range")
    def counting(min_confidence: float) -> FaceDetector:
        inner = create_detector("mediapipe_full_range", min_confidence)

        class Counting:
            def detect(self, image_rgb: np.ndarray) -> list[Detection]:
                calls.append(1)
                return inner.detect(image_rgb)

            def close(self) -> None:
                inner.close()

        return Counting()

    frames = run(front_end_factory(detector="test_counting_full_range", detect_interval=10),
                 read_video("single_face.mp4"))
    assert {track_id for frame in frames for track_id in ids(frame)} == {"f0"}
    # min_hits frames to confirm, then one detection every 10 frames.
    assert len(calls) <= 3 + len(frames) // 10 + 1


# --- geometry on a real face -----------------------------------------------------------------

def single_face(front_end_factory, image: np.ndarray):
    frames = run(front_end_factory(min_hits=1, max_faces=1), [image])
    assert len(frames[0].faces) == 1
    return frames[0].faces[0]


def test_head_pose_signs_follow_mirroring_and_rotation(front_end_factory):
    image = read_image("single_face.jpg")
    height, width = image.shape[:2]
    upright = single_face(front_end_factory, image).head_pose
    mirrored = single_face(front_end_factory, np.ascontiguousarray(image[:, ::-1])).head_pose
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 15, 1.0)  # counter-clockwise on screen
    rotated = single_face(front_end_factory, cv2.warpAffine(image, turn, (width, height))).head_pose
    assert abs(upright.yaw) < 15 and abs(upright.pitch) < 15 and abs(upright.roll) < 8
    assert mirrored.yaw == pytest.approx(-upright.yaw, abs=3)
    assert mirrored.roll == pytest.approx(-upright.roll, abs=3)
    assert rotated.roll - upright.roll == pytest.approx(15, abs=3)


def rotate_about_centroid(landmarks: np.ndarray, axis: str, degrees: float) -> np.ndarray:
    """Rigidly turn mesh points (x right, y down, z away from the camera) about a vertical or horizontal axis."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    rotation = {"vertical": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
                "horizontal": np.array([[1, 0, 0], [0, c, -s], [0, s, c]])}[axis]
    centre = landmarks.mean(axis=0)
    return (landmarks - centre) @ rotation.T + centre


def test_head_pose_follows_where_the_nose_points(front_end_factory):
    landmarks = single_face(front_end_factory, read_image("single_face.jpg")).landmarks
    base = estimate_head_pose(landmarks)
    nose = 1
    turned = rotate_about_centroid(landmarks, "vertical", -20)
    assert turned[nose, 0] > landmarks[nose, 0], "precondition: nose moved to the image's right"
    assert estimate_head_pose(turned).yaw - base.yaw == pytest.approx(20, abs=2)
    raised = rotate_about_centroid(landmarks, "horizontal", -20)
    assert raised[nose, 1] < landmarks[nose, 1], "precondition: nose moved up"
    assert estimate_head_pose(raised).pitch - base.pitch == pytest.approx(20, abs=2)


def found_ids(front_end_factory, image: np.ndarray) -> list[str]:
    return ids(run(front_end_factory(min_hits=1), [image])[0])


def test_frames_of_any_size(front_end_factory):
    group = read_image("multi_face.jpg")
    large = cv2.resize(group, (1920, 1280), interpolation=cv2.INTER_CUBIC)
    assert len(found_ids(front_end_factory, large)) == 5
    assert found_ids(front_end_factory, np.zeros((9, 7, 3), np.uint8)) == []


def test_large_face_crop_matches_small_face_crop(front_end_factory):
    image = read_image("single_face.jpg")
    large = cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    small_front, large_front = front_end_factory(min_hits=1, max_faces=1), front_end_factory(min_hits=1, max_faces=1)
    small_crop = small_front.crop(image, small_front.process(image, 0).faces[0])
    large_crop = large_front.crop(large, large_front.process(large, 0).faces[0])
    assert np.abs(small_crop.astype(int) - large_crop.astype(int)).mean() < 12


def test_crop_border_modes_fill_outside_pixels(front_end_factory):
    image = read_image("single_face.jpg")
    face_box = single_face(front_end_factory, image).box
    cut = np.ascontiguousarray(image[:, int(face_box.x + face_box.width * 0.3):])  # face runs off the left edge
    for border, expect_black in (("constant", True), ("replicate", False)):
        front_end = front_end_factory(min_hits=1, max_faces=1, crop_border=border)
        face = front_end.process(cut, 0).faces[0]
        crop = front_end.crop(cut, face)
        black_columns = int((crop.max(axis=(0, 2)) == 0).sum())
        assert (black_columns > 0) == expect_black


def test_quality_drops_for_blurred_and_small_faces(front_end_factory):
    image = read_image("single_face.jpg")
    sharp = single_face(front_end_factory, image).quality
    blurred = single_face(front_end_factory, cv2.GaussianBlur(image, (0, 0), 5)).quality
    small = single_face(front_end_factory, cv2.resize(image, None, fx=0.25, fy=0.25,
                                                      interpolation=cv2.INTER_AREA)).quality
    assert sharp.score > 0.7 and sharp.frontality > 0.9
    assert blurred.sharpness < 0.5 * sharp.sharpness and blurred.score < sharp.score
    assert small.size_px < sharp.size_px and small.score < sharp.score


def test_rejects_non_rgb_images(front_end_factory):
    front_end = front_end_factory(max_faces=1)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        front_end.process(np.zeros((48, 64), np.uint8), 0)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        front_end.process(np.zeros((48, 64, 3), np.float32), 0)


# --- configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("max_faces", 0),
    ("min_detection_confidence", 1.5),
    ("min_mesh_confidence", -0.1),
    ("min_hits", 0),
    ("max_misses", -1),
    ("detect_interval", 0),
    ("iou_threshold", 0.0),
    ("same_face_iou", 1.2),
    ("max_centre_distance", -0.5),
    ("region_scale", 0.9),
    ("region_size", 32),
    ("crop_size", 8),
    ("crop_border", "wrap"),
    ("full_quality_face_px", 0.0),
    ("sharpness_reference", 0.0),
])
def test_config_rejects_out_of_range_values(field, value):
    with pytest.raises(ValueError, match=f"{field}="):
        FaceFrontEndConfig(**{field: value})


def test_unknown_detector_lists_the_choices():
    assert {"mediapipe_full_range", "mediapipe_short_range"} <= set(detector_names())
    for attempt in (lambda: FaceFrontEndConfig(detector="yolo"), lambda: create_detector("yolo", 0.5)):
        with pytest.raises(ValueError, match="yolo") as error:
            attempt()
        assert "mediapipe_full_range" in str(error.value) and "mediapipe_short_range" in str(error.value)


def test_short_range_backend_detects_a_close_face():
    detector = create_detector("mediapipe_short_range", 0.5)
    try:
        detections = detector.detect(read_image("single_face.jpg"))
    finally:
        detector.close()
    assert len(detections) == 1 and detections[0].keypoints.shape == (6, 2)


def test_landmark_reading_handles_both_serialised_layouts():
    from mediapipe.framework.formats import landmark_pb2

    from fer_perception.face.mesh import landmark_array

    rng = np.random.default_rng(3)
    points = rng.uniform(-1, 1, (478, 3)).astype(np.float32)
    plain = landmark_pb2.NormalizedLandmarkList(
        landmark=[landmark_pb2.NormalizedLandmark(x=x, y=y, z=z) for x, y, z in points])
    with_visibility = landmark_pb2.NormalizedLandmarkList(
        landmark=[landmark_pb2.NormalizedLandmark(x=x, y=y, z=z, visibility=0.5) for x, y, z in points])
    assert np.array_equal(landmark_array(plain), points.astype(np.float64))  # fast strided path
    assert np.array_equal(landmark_array(with_visibility), points.astype(np.float64))  # field-by-field path
