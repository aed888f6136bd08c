"""The lifecycle nodes over real DDS, driven through their lifecycle_msgs services as a lifecycle manager drives
them: an inactive node receives and processes no frame (its CPU time stays flat), activate -> deactivate -> activate
works, cleanup removes the publishers, shutdown ends the executable, a failing activation says why; and the graph's
processes started all at once, as ros2 launch starts them, play the demo clip into a ready perception.

Subprocesses inherit the test session's private ROS domain (conftest), so no other graph is seen.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fer_msgs.msg import Event, Events, Expressions, Faces
from fer_msgs.srv import CaptureNeutral
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from bag_helpers import video_frames
from conftest import REPO, media_path
from fer_perception.graph import load_graph
from fer_perception.nodes.expression_node import ExpressionNode
from fer_perception.nodes.messages import bgr8_image_msg, ns_to_stamp
from fer_perception.nodes.qos import SENSOR_QOS, reliable
from fer_perception.nodes.runtime import NodeGroup
from fer_perception.paths import demo_clip
from ros_helpers import Client, wait_until

PREFIX = "/fer_test/lifecycle/"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class LifecycleClient:
    """Calls a lifecycle node's ``change_state`` and ``get_state`` services from a test client."""

    def __init__(self, client: Client, node: str):
        self.client = client
        self.change = client.node.create_client(ChangeState, f"{node}/change_state")
        self.get = client.node.create_client(GetState, f"{node}/get_state")

    def _call(self, service, request, timeout: float = 60.0):
        assert wait_until(service.service_is_ready, timeout, self.client.spin), f"{service.srv_name} never appeared"
        future = service.call_async(request)
        assert wait_until(future.done, timeout, self.client.spin), f"{service.srv_name} did not answer"
        return future.result()

    def state(self) -> str:
        return self._call(self.get, GetState.Request()).current_state.label

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        return self._call(self.change, request).success


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def spawn(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as output:
        return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, stdout=output, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_face_node_driven_over_dds_works_on_frames_only_while_active(ros_context, tmp_path):
    frames, fps = video_frames(media_path("single_face.mp4"))
    log = tmp_path / "face_detection.log"
    node = spawn(["fer_perception.nodes.face_detection_node", "--ros-args", "-r", "__node:=fer_test_lc_face",
                  "-r", f"image:={PREFIX}image", "-r", f"faces:={PREFIX}faces", "-p", "autostart:=false",
                  "-p", "min_hits:=1"], log)
    client = Client(ros_context, "fer_test_lifecycle_manager")
    faces: list[Faces] = []
    client.node.create_subscription(Faces, PREFIX + "faces", faces.append, reliable(100))
    images = client.node.create_publisher(Image, PREFIX + "image", SENSOR_QOS)
    lifecycle = LifecycleClient(client, "/fer_test_lc_face")
    stamp = [1_000_000_000]

    def send_frames(seconds: float) -> float:
        """Publish the clip's frames for ``seconds``; the node's CPU seconds per second meanwhile."""
        began, cpu = time.monotonic(), cpu_seconds(node.pid)
        index = 0
        while time.monotonic() - began < seconds:
            stamp[0] += round(1e9 / fps)
            images.publish(bgr8_image_msg(frames[index % len(frames)], Header(stamp=ns_to_stamp(stamp[0]))))
            index += 1
            wait_until(lambda: False, 1 / fps, client.spin)
        return (cpu_seconds(node.pid) - cpu) / (time.monotonic() - began)

    def subscribers() -> int:
        return client.node.count_subscribers(PREFIX + "image")

    try:
        assert lifecycle.state() == "unconfigured"
        assert lifecycle.transition(Transition.TRANSITION_CONFIGURE) and lifecycle.state() == "inactive"
        assert wait_until(lambda: client.node.count_publishers(PREFIX + "faces") == 1, 10.0, client.spin)
        wait_until(lambda: False, 1.0, client.spin)
        inactive_cpu = send_frames(3.0)
        assert not faces and subscribers() == 0, "an inactive node subscribed to the camera or published faces"

        for _ in range(2):  # activate -> deactivate -> activate -> deactivate
            assert lifecycle.transition(Transition.TRANSITION_ACTIVATE) and lifecycle.state() == "active"
            assert wait_until(lambda: images.get_subscription_count() == 1, 10.0, client.spin)
            wait_until(lambda: False, 0.5, client.spin)
            before = len(faces)
            active_cpu = send_frames(3.0)
            assert wait_until(lambda: len(faces) > before + 10, 10.0, client.spin), "the active node found no faces"
            assert any(f.faces for f in faces[before:]), "the face in the clip was not reported"
            assert lifecycle.transition(Transition.TRANSITION_DEACTIVATE) and lifecycle.state() == "inactive"
            assert wait_until(lambda: subscribers() == 0, 10.0, client.spin), "deactivation left the subscription"
            wait_until(lambda: False, 0.5, client.spin)
            after = len(faces)
            paused_cpu = send_frames(2.0)
            wait_until(lambda: False, 0.5, client.spin)
            assert len(faces) == after, "the deactivated node still published faces"
            # Measured on a loaded 2-core machine: 0.005-0.01 CPU s/s inactive, 0.2 active (15 frames/s).
            assert max(inactive_cpu, paused_cpu) < 0.1 < active_cpu, (inactive_cpu, active_cpu, paused_cpu)

        assert lifecycle.transition(Transition.TRANSITION_CLEANUP) and lifecycle.state() == "unconfigured"
        assert wait_until(lambda: client.node.count_publishers(PREFIX + "faces") == 0, 10.0, client.spin), \
            "cleanup left the faces publisher"
        assert lifecycle.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        node.wait(timeout=20)
    finally:
        stop(node)
        client.close()
    assert node.returncode == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()


def test_an_activation_that_fails_says_why_and_leaves_the_node_inactive(ros_context):
    group = NodeGroup()
    client = Client(ros_context, "fer_test_lifecycle_failing")
    try:
        node = group.add(ExpressionNode, node_name="fer_test_lc_expression",
                         parameter_overrides=[Parameter("emotion_model", value="fer2031")])
        group.spin_in_thread()
        lifecycle = LifecycleClient(client, "/fer_test_lc_expression")
        assert lifecycle.transition(Transition.TRANSITION_CONFIGURE)
        assert not lifecycle.transition(Transition.TRANSITION_ACTIVATE)
        assert lifecycle.state() == "inactive"
        assert "unknown emotion model 'fer2031'" in node.failure
        capture = client.node.create_client(CaptureNeutral, "/fer_test_lc_expression/capture_neutral")
        answer = lifecycle._call(capture, CaptureNeutral.Request())
        assert not answer.success and "not active" in answer.message
        assert lifecycle.transition(Transition.TRANSITION_INACTIVE_SHUTDOWN) and lifecycle.state() == "finalized"
    finally:
        client.close()
        group.shutdown()


def log_stamp(log: str, text: str) -> float:
    """The ROS time stamp of the first line of a node's console log that contains ``text``."""
    found = re.search(r"\[INFO\] \[(\d+\.\d+)\] \[[^]]+\]: [^\n]*" + re.escape(text), log)
    assert found, f"no line with {text!r} in:\n{log[-3000:]}"
    return float(found[1])


def test_the_graph_started_all_at_once_plays_the_demo_clip_into_a_ready_perception(ros_context, tmp_path):
    """As ros2 launch starts the graph (every process at the same instant) but without a lifecycle manager: each
    executable brings its node up, and the camera holds the clip until face_detection and expression are active."""
    specs = load_graph().resolve({"source": str(demo_clip())})
    assert [s.name for s in specs] == ["camera", "face_detection", "expression"]
    client = Client(ros_context, "fer_test_lifecycle_graph")
    expressions: list[Expressions] = []
    events: list[Event] = []
    client.node.create_subscription(Expressions, "/fer/expressions", expressions.append, reliable(200))
    client.node.create_subscription(Events, "/fer/events", lambda m: events.extend(m.events), reliable(200))
    logs = {s.name: tmp_path / f"{s.name}.log" for s in specs}
    processes = {s.name: spawn([f"fer_perception.nodes.{s.executable}", *s.process_args()], logs[s.name])
                 for s in specs}
    try:
        camera = processes["camera"]
        assert wait_until(lambda: camera.poll() is not None, 50.0, client.spin), "the camera did not reach the end"
        wait_until(lambda: False, 2.0, client.spin)  # the last frames
        for name in ("face_detection", "expression"):
            stop(processes[name])  # the expression node closes its open episodes
        wait_until(lambda: False, 0.5, client.spin)
    finally:
        for process in processes.values():
            stop(process)
        client.close()
    output = {name: log.read_text() for name, log in logs.items()}
    assert camera.returncode == 0, output["camera"][-3000:]
    assert "waiting for face_detection, expression to be active" in output["camera"], output["camera"][-3000:]
    assert "end of video file" in output["camera"] and "after 72 frames" in output["camera"]
    # The first frame went out after both nodes were active: their activation lines come before the camera's.
    playing = log_stamp(output["camera"], "graph ready: playing")
    assert log_stamp(output["face_detection"], "detecting faces on") < playing, output["camera"][-3000:]
    assert log_stamp(output["expression"], "emotion from") < playing, output["expression"][-3000:]
    # Started at once without the wait, the face node received 0-62 of the 72 frames and in five runs of six no
    # expression came out. With it, 62-72: under load the face node's side of DDS discovery may still lag the
    # camera's settle time by a few frames, and with keep-last-1 input a frame may be overwritten while it is busy.
    received = re.search(r"frames received (\d+)", output["face_detection"])
    assert received and int(received[1]) >= 54, output["face_detection"][-3000:]
    # How many of them reach the expression node depends on how soon DDS matches the face node's publisher with
    # its subscription, seconds under load (measured 20-72 expression messages); that they arrive does not.
    assert any(m.expressions for m in expressions), f"no expression with a face in {len(expressions)} messages"
    assert events and {e.kind for e in events} <= {getattr(Event, k) for k in dir(Event) if k.startswith("KIND_")}
    assert not any("Traceback" in text for text in output.values())
