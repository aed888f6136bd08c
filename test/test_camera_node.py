"""camera_node over real DDS: every frame of a file, stamps, camera info, looping, bad sources,
and frames crossing a process boundary with sensor-data QoS at 30 Hz."""
from __future__ import annotations

import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from conftest import media_path
from fer_perception.image_codec import decode_image
from fer_perception.nodes.camera_node import CameraNode
from fer_perception.nodes.messages import stamp_to_ns
from fer_perception.nodes.qos import SENSOR_QOS
from fer_perception.nodes.runtime import NodeStartError, bring_up, lifecycle_state
from ros_helpers import wait_until


def start_camera(context, **params):
    overrides = [Parameter(k, value=v) for k, v in {"wait_for_subscribers": True, **params}.items()]
    camera = CameraNode(context=context, parameter_overrides=overrides)
    bring_up(camera)
    return camera


class Collector:
    """A node that keeps what arrives on the camera topics."""

    def __init__(self, context, topic="image_raw"):
        self.node = rclpy.create_node("fer_test_collector", context=context)
        self.images: list[Image] = []
        self.infos: list[CameraInfo] = []
        self.clock: list[Clock] = []
        self.node.create_subscription(Image, topic, self.images.append, SENSOR_QOS)
        self.node.create_subscription(CameraInfo, "camera_info", self.infos.append, SENSOR_QOS)
        self.node.create_subscription(Clock, "/clock", self.clock.append, 10)


def spin_until(executor, predicate, timeout):
    return wait_until(predicate, timeout, lambda: executor.spin_once(timeout_sec=0.02))


def test_publishes_every_frame_of_a_file_then_finishes(ros_context):
    collector = Collector(ros_context)
    camera = start_camera(ros_context, source=str(media_path("single_face.mp4")), rate=120.0, frame_id="cam_test")
    executor = SingleThreadedExecutor(context=ros_context)
    for node in (collector.node, camera):
        executor.add_node(node)
    try:
        assert spin_until(executor, camera.finished.is_set, 30.0), "the camera never reached the end of the file"
        spin_until(executor, lambda: len(collector.images) >= 72 and len(collector.infos) >= 72, 2.0)
    finally:
        executor.shutdown()
        camera.destroy_node()
        collector.node.destroy_node()
    assert camera.published == 72
    assert len(collector.images) == 72, "frames were lost within one process"
    first = collector.images[0]
    assert (first.width, first.height, first.encoding, first.header.frame_id) == (640, 360, "bgr8", "cam_test")
    reference = cv2.VideoCapture(str(media_path("single_face.mp4"))).read()[1]
    assert np.array_equal(decode_image(first.encoding, first.height, first.width, first.step,
                                       first.is_bigendian, first.data), reference)
    stamps = [stamp_to_ns(m.header.stamp) for m in collector.images]
    assert stamps == sorted(stamps) and len(set(stamps)) == 72
    assert [stamp_to_ns(i.header.stamp) for i in collector.infos] == stamps
    assert all((i.width, i.height, i.header.frame_id) == (640, 360, "cam_test") for i in collector.infos)


def test_media_stamps_follow_the_video_and_loop_continues_the_timeline(ros_context):
    collector = Collector(ros_context)
    camera = start_camera(ros_context, source=str(media_path("single_face.mp4")), rate=120.0,
                          stamp_source="media", loop=True)
    executor = SingleThreadedExecutor(context=ros_context)
    for node in (collector.node, camera):
        executor.add_node(node)
    try:
        assert spin_until(executor, lambda: len(collector.images) >= 100, 30.0)
    finally:
        executor.shutdown()
        camera.destroy_node()
        collector.node.destroy_node()
    frames = np.array([stamp_to_ns(m.header.stamp) / 1e9 * 30 for m in collector.images])
    assert frames[0] == pytest.approx(0.0), "media stamps start at 0 s"
    assert np.abs(frames - np.round(frames)).max() < 0.01, "every stamp lies on the video's 30 fps timeline"
    assert np.all(np.diff(frames) > 0), "looping continues the timeline instead of restarting it"
    assert frames.max() >= 90, "frames of the second pass follow those of the first"
    assert collector.clock and stamp_to_ns(collector.clock[0].clock) == 0


def test_a_missing_source_fails_the_activation_with_the_reason_and_the_node_ends_cleanly(ros_context):
    camera = CameraNode(context=ros_context, parameter_overrides=[Parameter("source", value="/nonexistent/clip.mp4")])
    with pytest.raises(NodeStartError, match="/nonexistent/clip.mp4"):
        bring_up(camera)
    assert lifecycle_state(camera) == "inactive" and camera.published == 0
    assert "/nonexistent/clip.mp4" in camera.failure
    camera.destroy_node()


def test_a_looping_file_removed_mid_run_ends_the_node_with_the_reason(ros_context, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(media_path("single_face.mp4").read_bytes())
    collector = Collector(ros_context)
    camera = start_camera(ros_context, source=str(clip), rate=120.0, loop=True)
    executor = SingleThreadedExecutor(context=ros_context)
    for node in (collector.node, camera):
        executor.add_node(node)
    try:
        assert spin_until(executor, lambda: len(collector.images) >= 10, 30.0)
        clip.unlink()
        assert spin_until(executor, camera.finished.is_set, 10.0), "the camera kept going without its file"
    finally:
        executor.shutdown()
        camera.destroy_node()
        collector.node.destroy_node()
    assert "is gone" in camera.failure and str(clip) in camera.failure
    assert camera.published >= 72, "the first pass was played whole"


@pytest.mark.parametrize("command", [["fer_perception.nodes.camera_node", "--ros-args", "-p"],
                                     ["fer_perception.runner", "--drain", "0"]])
@pytest.mark.parametrize("source", ["/nonexistent/clip.mp4", "/dev/video_fer_missing"])
def test_a_source_that_cannot_be_played_makes_the_executable_fail(command, source):
    done = subprocess.run([sys.executable, "-m", *command, f"source:={source}"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if source in line]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]


def test_an_invalid_parameter_is_refused_with_a_reason(ros_context):
    camera = start_camera(ros_context, source=str(media_path("single_face.mp4")), rate=-5.0,
                          stamp_source="video")
    try:
        assert camera.get_parameter("rate").value == 0.0, "a bad start-up value falls back to the default"
        assert camera.config["stamp_source"] == "capture"
        result = camera.set_parameters([Parameter("rate", value=500.0)])[0]
        assert not result.successful and "rate" in result.reason
        assert camera.set_parameters([Parameter("rate", value=15.0)])[0].successful
    finally:
        camera.destroy_node()


@pytest.fixture
def clip_640x480(tmp_path):
    """100 frames of the real face clip at 640x480, as a video file."""
    capture = cv2.VideoCapture(str(media_path("single_face.mp4")))
    frames = []
    while (ok_frame := capture.read())[0]:
        frames.append(cv2.resize(ok_frame[1], (640, 480)))
    path = tmp_path / "clip_640x480.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for index in range(100):
        writer.write(frames[index % len(frames)])
    writer.release()
    return path


def test_frames_cross_a_process_boundary_with_sensor_data_qos_at_30_hz(ros_context, clip_640x480):
    """The tuned DDS profile delivers every best-effort 640x480 frame to another process, whole and in order, from
    the moment this process's side of discovery has matched the camera: under load that side may lag the camera's
    settle time by a frame or two, which are then lost at the start (CI once: 99 of 100)."""
    node = rclpy.create_node("fer_test_remote_subscriber", context=ros_context)
    received: list[Image] = []
    node.create_subscription(Image, "/remote_camera/image_raw", received.append, SENSOR_QOS)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    camera = subprocess.Popen([sys.executable, "-m", "fer_perception.nodes.camera_node", "--ros-args",
                               "-r", "image_raw:=/remote_camera/image_raw", "-p", f"source:={clip_640x480}",
                               "-p", "rate:=30.0", "-p", "wait_for_subscribers:=true"])
    try:
        assert spin_until(executor, lambda: camera.poll() is not None, 60.0), "the camera process did not end"
        spin_until(executor, lambda: len(received) >= 100, 2.0)
    finally:
        if camera.poll() is None:
            camera.send_signal(signal.SIGINT)
            camera.wait(timeout=10)
        executor.shutdown()
        node.destroy_node()
    assert camera.returncode == 0
    lost_at_start = 100 - len(received)
    assert 0 <= lost_at_start <= 2, f"only {len(received)} of 100 frames arrived"
    assert all((m.width, m.height) == (640, 480) for m in received)
    capture = cv2.VideoCapture(str(clip_640x480))
    sent = [frame.tobytes() for ok, frame in iter(capture.read, (False, None)) if ok]
    capture.release()
    assert [bytes(m.data) for m in received] == sent[lost_at_start:], "a frame was lost, damaged or reordered"
    span = (stamp_to_ns(received[-1].header.stamp) - stamp_to_ns(received[0].header.stamp)) / 1e9
    intervals = len(received) - 1
    assert span == pytest.approx(intervals / 30, rel=0.25), f"published at {intervals / span:.1f} Hz instead of 30 Hz"
