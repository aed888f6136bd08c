"""Recorded sessions over real DDS: fer-replay and fer-record with real bags, and live results equal offline ones."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from fer_msgs.msg import Event, Events, Expressions
from rclpy.parameter import Parameter
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from bag_helpers import NS, video_frames, write_image_bag
from conftest import REPO, media_path
from fer_perception.graph import graph_topics, load_graph
from fer_perception.nodes.bag_record import BagRecordNode
from fer_perception.nodes.bag_replay import BagReplayNode
from fer_perception.nodes.messages import ns_to_stamp, stamp_to_ns
from fer_perception.nodes.qos import SENSOR_QOS, reliable
from fer_perception.nodes.runtime import NodeGroup
from fer_perception.offline.analysis import Analyzer
from fer_perception.offline.bags import typestore
from fer_perception.offline.inputs import InputFrame
from fer_perception.runner import start_graph
from ros_helpers import Client, await_subscribers, publish_clip, wait_until

FRAMES = 24


def _replay(bag, topic_prefix: str, ros_context, **params) -> tuple[list[Image], list[int]]:
    """Run a replay node on ``bag`` to its end; the images and /clock stamps a subscriber saw."""
    client = Client(ros_context, "fer_test_replay_client")
    images: list[Image] = []
    clock: list[int] = []
    client.node.create_subscription(Image, f"{topic_prefix}/image_raw", lambda m: images.append(m), SENSOR_QOS)
    client.node.create_subscription(Clock, "/clock", lambda m: clock.append(stamp_to_ns(m.clock)), reliable(100))
    group = NodeGroup()
    try:
        replay = group.add(BagReplayNode, parameter_overrides=[Parameter(k, value=v) for k, v in
                                                               {"bag": str(bag), **params}.items()],
                           cli_args=["--ros-args", "-r", f"/camera/image_raw:={topic_prefix}/image_raw"])
        group.spin_in_thread()
        assert wait_until(lambda: replay.finished.is_set(), 20.0, client.spin)
        wait_until(lambda: False, 0.3, client.spin)
    finally:
        group.shutdown()
        client.close()
    return images, clock


def test_replay_publishes_the_bag_at_its_rate_with_clock(tmp_path, ros_context):
    frames, fps = video_frames(media_path("single_face.mp4"))
    stamps = write_image_bag(tmp_path / "session.mcap", frames[:FRAMES], fps)
    images, clock = _replay(tmp_path / "session", "/fer_test/replay", ros_context, rate=2.0)
    received = [stamp_to_ns(m.header.stamp) for m in images]
    assert len(received) >= FRAMES - 2 and received == sorted(received) and set(received) <= set(stamps)
    first = images[0]
    index = stamps.index(received[0])
    assert (first.height, first.width, first.encoding) == (360, 640, "bgr8")
    assert np.array_equal(np.frombuffer(first.data, np.uint8).reshape(360, 640, 3), frames[index])
    assert clock and clock == sorted(clock) and stamps[0] <= clock[0] and clock[-1] <= stamps[-1]

    window, _ = _replay(tmp_path / "session" / "session.mcap", "/fer_test/replay_window", ros_context,
                        start=0.2, duration=0.3, clock=False)
    expected = [s for s in stamps if stamps[0] + 0.2 * NS <= s < stamps[0] + 0.5 * NS]
    assert [stamp_to_ns(m.header.stamp) for m in window] == expected


def test_record_writes_images_and_results_that_read_back(tmp_path, ros_context):
    frames, fps = video_frames(media_path("single_face.mp4"))
    client = Client(ros_context, "fer_test_record_client")
    images = client.node.create_publisher(Image, "/fer_test/record/image", SENSOR_QOS)
    events = client.node.create_publisher(Events, graph_topics()["events"], reliable(10))
    group = NodeGroup()
    out = tmp_path / "recorded.mcap"
    try:
        recorder = group.add(BagRecordNode, parameter_overrides=[Parameter("out", value=str(out)),
                                                                 Parameter("results", value=True)],
                             cli_args=["--ros-args", "-r", "image:=/fer_test/record/image"])
        group.spin_in_thread()
        assert await_subscribers([images, events], client.spin)
        sent = publish_clip(images, frames[:FRAMES], 5 * NS, fps, "recorded_camera", client.spin)
        for index in range(3):
            event = Event(event_id=index, face_id="f0", kind=Event.KIND_BLINK, phase=Event.INSTANT)
            events.publish(Events(header=Header(stamp=ns_to_stamp(sent[index])), events=[event]))
        assert wait_until(lambda: recorder.counts["/fer/events"] == 3, 5.0, client.spin)
    finally:
        group.shutdown()
        client.close()
    with AnyReader([tmp_path / "recorded"], default_typestore=typestore()) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        read = {}
        for connection, _, raw in reader.messages():
            read.setdefault(connection.topic, []).append(reader.deserialize(raw, connection.msgtype))
    assert types["/fer_test/record/image"] == "sensor_msgs/msg/Image"
    assert types["/fer/events"] == "fer_msgs/msg/Events" and types["/fer/expressions"] == "fer_msgs/msg/Expressions"
    recorded = [m.header.stamp.sec * NS + m.header.stamp.nanosec for m in read["/fer_test/record/image"]]
    assert len(recorded) >= FRAMES - 2 and set(recorded) <= set(sent)
    assert [e.events[0].event_id for e in read["/fer/events"]] == [0, 1, 2]
    assert read["/fer/events"][0].events[0].kind == "blink"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_while_recording_leaves_a_bag_that_reads_back(signum, tmp_path, ros_context):
    frames, fps = video_frames(media_path("single_face.mp4"))
    topic = f"/fer_test/record_{signum.name.lower()}/image"
    client = Client(ros_context, f"fer_test_record_{signum.name.lower()}_client")
    images = client.node.create_publisher(Image, topic, SENSOR_QOS)
    recorder = subprocess.Popen([sys.executable, "-m", "fer_perception.nodes.bag_record", "--out",
                                 str(tmp_path / "stopped.mcap"), "--topic", topic], cwd=REPO,
                                stderr=subprocess.PIPE, text=True)
    try:
        assert await_subscribers([images], client.spin, timeout=60.0)
        sent = publish_clip(images, frames[:FRAMES // 2], 5 * NS, fps, "camera", client.spin)
        recorder.send_signal(signum)  # while frames still arrive
        publish_clip(images, frames[FRAMES // 2:FRAMES], sent[-1] + NS, fps, "camera", client.spin)
        _, errors = recorder.communicate(timeout=30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
        client.close()
    assert recorder.returncode == 0 and "Traceback" not in errors, errors
    with AnyReader([tmp_path / "stopped"], default_typestore=typestore()) as reader:
        recorded = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()]
    assert len(recorded) >= FRAMES // 2 - 2
    assert {m.header.stamp.sec * NS + m.header.stamp.nanosec for m in recorded[:FRAMES // 2 - 2]} <= set(sent)


def test_the_live_graph_gives_what_the_offline_analyser_gives(ros_context):
    frames, fps = video_frames(media_path("single_face.mp4"))
    image_topic = "/fer_test/live_vs_offline/image"
    specs = [s for s in load_graph().resolve({"camera": "false", "image": image_topic})
             if s.name in ("face_detection", "expression")]
    for spec in specs:
        if spec.name == "face_detection":
            spec.overrides["deterministic_ids"] = True
    group = start_graph(specs)
    group.spin_in_thread()
    client = Client(ros_context, "fer_test_live_client")
    live: list[Expressions] = []
    client.node.create_subscription(Expressions, "/fer/expressions", lambda m: live.append(m), reliable(100))
    publisher = client.node.create_publisher(Image, image_topic, SENSOR_QOS)
    stamps = [1_000 * NS + round(i * NS / fps) for i in range(len(frames))]
    try:
        assert await_subscribers([publisher], client.spin)
        assert wait_until(lambda: client.node.count_subscribers("/fer/face_crops") >= 1, 20.0, client.spin)
        assert publish_clip(publisher, frames, stamps[0], fps, "camera", client.spin,
                            arrived=lambda stamp: live and stamp_to_ns(live[-1].header.stamp) == stamp) == stamps
    finally:
        group.shutdown()
        client.close()

    analyzer = Analyzer.from_config()
    try:
        offline = [analyzer.process(InputFrame(frame, index, stamp, "clip", "camera"))
                   for index, (frame, stamp) in enumerate(zip(frames, stamps))]
    finally:
        analyzer.close()
    assert [stamp_to_ns(m.header.stamp) for m in live] == stamps
    compared = 0
    for message, analysed in zip(live, offline):
        assert [e.face_id for e in message.expressions] == [e.face_id for e in analysed.result.expressions]
        for got, want in zip(message.expressions, analysed.result.expressions):
            assert np.allclose(got.au_intensity, want.aus.intensity, atol=1e-4)
            assert np.allclose(got.au_intensity_smoothed, want.au_smoothed, atol=1e-4)
            assert np.allclose(got.emotion_probabilities, want.emotion, atol=1e-4)
            assert np.allclose(got.emotion_probabilities_smoothed, want.emotion_smoothed, atol=1e-4)
            assert got.label_smoothed == want.label_smoothed
            compared += 1
    assert compared >= len(frames) - 5
