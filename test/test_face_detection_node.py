"""face_detection_node over real DDS: every encoding and compressed input, bad frames survived, an 8000 x 8000
frame, crops only on demand, parameters refused with a reason."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import rclpy
from fer_msgs.msg import FaceCrops, Faces
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from sensor_msgs.msg import CompressedImage, Image

from conftest import media_path
from fer_perception.image_codec import SUPPORTED_ENCODINGS, encode_image
from fer_perception.nodes.face_detection_node import FaceDetectionNode
from fer_perception.nodes.messages import ns_to_stamp, stamp_to_ns
from fer_perception.nodes.qos import SENSOR_QOS, reliable
from fer_perception.nodes.runtime import bring_up
from ros_helpers import await_subscribers, wait_until


class Harness:
    """The node under test, plus a client node that publishes frames and collects results."""

    def __init__(self, context, **params):
        overrides = [Parameter(k, value=v) for k, v in {"min_hits": 1, "deterministic_ids": True, **params}.items()]
        self.node = FaceDetectionNode(context=context, parameter_overrides=overrides,
                                      cli_args=["--ros-args", "-r", "image:=/fer_test/face_node/image"])
        bring_up(self.node)
        self.client = rclpy.create_node("fer_test_face_client", context=context)
        self.faces: dict[int, Faces] = {}
        self.crops: list[FaceCrops] = []
        self.client.create_subscription(Faces, "faces", lambda m: self.faces.setdefault(stamp_to_ns(m.header.stamp), m),
                                        reliable(50))
        self.raw = self.client.create_publisher(Image, "/fer_test/face_node/image", SENSOR_QOS)
        self.compressed = self.client.create_publisher(CompressedImage, "/fer_test/face_node/image/compressed",
                                                       SENSOR_QOS)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.client)
        self.stamp = 1_000_000_000
        self.matched: set[Publisher] = set()

    def spin(self) -> None:
        self.executor.spin_once(timeout_sec=0.01)

    def subscribe_crops(self) -> None:
        self.client.create_subscription(FaceCrops, "face_crops", self.crops.append, reliable(50))

    def send(self, publisher, msg, wait_result: bool = True) -> Faces | None:
        """Publish ``msg`` with a fresh stamp; return the faces published for it."""
        self.stamp += 100_000_000
        msg.header.stamp = ns_to_stamp(self.stamp)
        msg.header.frame_id = "fer_test_cam"
        if publisher not in self.matched:
            assert await_subscribers([publisher], self.spin)
            self.matched.add(publisher)
        publisher.publish(msg)
        stamp = self.stamp
        if not wait_result:
            wait_until(lambda: False, 0.3, self.spin)
            return self.faces.get(stamp)
        wait_until(lambda: stamp in self.faces, 10.0, self.spin)
        return self.faces.get(stamp)

    def close(self) -> None:
        self.executor.shutdown()
        self.client.destroy_node()
        self.node.destroy_node()


@pytest.fixture
def harness(ros_context, request):
    h = Harness(ros_context, **getattr(request, "param", {}))
    yield h
    h.close()


@pytest.fixture(scope="module")
def photo():
    return cv2.imread(str(media_path("single_face.jpg")))


def image_msg(image_bgr: np.ndarray, encoding: str, padding: int = 0) -> Image:
    encoded = encode_image(image_bgr, encoding, row_padding=padding)
    msg = Image(encoding=encoded.encoding, height=encoded.height, width=encoded.width, step=encoded.step,
                is_bigendian=encoded.is_bigendian)
    msg.data = encoded.data
    return msg


def test_every_encoding_with_row_padding_gives_the_face(harness, photo):
    boxes = {}
    for encoding in SUPPORTED_ENCODINGS:
        result = harness.send(harness.raw, image_msg(photo, encoding, padding=7))
        assert result is not None, f"{encoding}: no faces message"
        assert result.header.frame_id == "fer_test_cam"
        assert len(result.faces) == 1, f"{encoding}: {len(result.faces)} faces"
        boxes[encoding] = result.faces[0].box
    assert {harness.faces[s].faces[0].id for s in harness.faces} == {"f0"}
    reference = boxes["bgr8"]
    for encoding, box in boxes.items():
        assert abs(box.x - reference.x) < 12 and abs(box.width - reference.width) < 12, encoding


@pytest.mark.parametrize("harness", [{"input_transport": "compressed"}], indirect=True)
def test_compressed_jpeg_and_png_input(harness, photo):
    for extension, fmt in ((".jpg", "bgr8; jpeg compressed bgr8"), (".png", "png")):
        msg = CompressedImage(format=fmt)
        msg.data = cv2.imencode(extension, photo)[1].tobytes()
        result = harness.send(harness.compressed, msg)
        assert result is not None and len(result.faces) == 1, fmt


@pytest.mark.parametrize("harness", [{"input_transport": "compressed"}], indirect=True)
def test_undecodable_jpeg_is_skipped_and_the_next_frame_processed(harness, photo):
    bad = CompressedImage(format="jpeg")
    bad.data = b"\xff\xd8 this is not a jpeg"
    assert harness.send(harness.compressed, bad, wait_result=False) is None
    good = CompressedImage(format="jpeg")
    good.data = cv2.imencode(".jpg", photo)[1].tobytes()
    assert len(harness.send(harness.compressed, good).faces) == 1
    assert harness.node.diagnostics.stats.dropped_by_cause() == {"corrupt data": 1}


def bad_frames(photo):
    good = image_msg(photo, "bgr8")
    unknown = image_msg(photo, "bgr8")
    unknown.encoding = "bayer_rggb8"
    short_step = image_msg(photo, "bgr8")
    short_step.step = good.width
    truncated = image_msg(photo, "bgr8")
    truncated.data = bytes(good.data)[: len(good.data) // 2]
    empty = Image(encoding="bgr8", height=0, width=0, step=0)
    return {"unknown encoding": unknown, "step too small": short_step, "data too short": truncated,
            "zero size": empty}


def test_bad_frames_are_survived_and_the_next_good_frame_is_processed(harness, photo):
    for problem, msg in bad_frames(photo).items():
        dropped = sum(harness.node.diagnostics.stats.dropped_by_cause().values())
        assert harness.send(harness.raw, msg, wait_result=False) is None, problem
        assert sum(harness.node.diagnostics.stats.dropped_by_cause().values()) == dropped + 1, problem
        result = harness.send(harness.raw, image_msg(photo, "rgb8"))
        assert result is not None and len(result.faces) == 1, f"no result after a frame with {problem}"
    # Each cause got its own warning although all came within one throttle period, and its own count.
    assert harness.node.bad_frame_warnings.logged == {"unsupported encoding", "step", "data length", "image size"}
    assert harness.node.diagnostics.stats.dropped_by_cause() == dict.fromkeys(harness.node.bad_frame_warnings.logged, 1)


def test_an_8000_by_8000_frame_is_processed_in_seconds_and_the_next_frame_too(harness, photo):
    reference = harness.send(harness.raw, image_msg(photo, "bgr8")).faces[0].box
    huge = image_msg(cv2.resize(photo, (8000, 8000), interpolation=cv2.INTER_LINEAR), "bgr8")
    started = time.monotonic()
    result = harness.send(harness.raw, huge)
    took = time.monotonic() - started
    assert result is not None and len(result.faces) == 1, "no face found in the 8000 x 8000 frame"
    assert took < 5.0, f"an 8000 x 8000 frame took {took:.1f} s"
    box, scale_x, scale_y = result.faces[0].box, 8000 / photo.shape[1], 8000 / photo.shape[0]
    assert abs(box.x - reference.x * scale_x) < 0.05 * box.width
    assert abs(box.y - reference.y * scale_y) < 0.05 * box.height
    assert abs(box.width / (reference.width * scale_x) - 1) < 0.05
    after = harness.send(harness.raw, image_msg(photo, "bgr8"))
    assert after is not None and len(after.faces) == 1 and harness.node.diagnostics.stats.dropped_by_cause() == {}


def test_crops_are_computed_only_while_subscribed(harness, photo):
    for _ in range(3):
        assert len(harness.send(harness.raw, image_msg(photo, "bgr8")).faces) == 1
    assert harness.node.crops_published == 0
    harness.subscribe_crops()
    assert wait_until(lambda: harness.node.crops_pub.get_subscription_count() > 0, 10.0, harness.spin)
    result = harness.send(harness.raw, image_msg(photo, "bgr8"))
    assert wait_until(lambda: harness.crops, 5.0, harness.spin)
    crop = harness.crops[-1]
    assert stamp_to_ns(crop.header.stamp) == stamp_to_ns(result.header.stamp)
    assert crop.crops[0].face.id == result.faces[0].id
    assert (crop.crops[0].image.width, crop.crops[0].image.height) == (112, 112)
    pixels = np.frombuffer(crop.crops[0].image.data, np.uint8).reshape(112, 112, 3)
    assert pixels.std() > 20, "the crop must show the face, not padding"


def test_parameters_are_validated_at_run_time(harness, photo):
    node = harness.node
    refused = node.set_parameters([Parameter("max_faces", value=0)])[0]
    assert not refused.successful and "max_faces" in refused.reason
    refused = node.set_parameters([Parameter("detector", value="yolo")])[0]
    assert not refused.successful and "mediapipe_full_range" in refused.reason
    assert node.set_parameters([Parameter("crop_size", value=96)])[0].successful
    assert len(harness.send(harness.raw, image_msg(photo, "bgr8")).faces) == 1
    assert node.front_end_config.crop_size == 96 and node.front_end.config.crop_size == 96


def test_bad_start_up_values_fall_back_to_defaults(ros_context):
    node = FaceDetectionNode(context=ros_context, parameter_overrides=[
        Parameter("max_faces", value=99), Parameter("detector", value="nonexistent")])
    try:
        node.trigger_configure()
        assert node.front_end_config.max_faces == 5
        assert node.front_end_config.detector == "mediapipe_full_range"
    finally:
        node.destroy_node()
