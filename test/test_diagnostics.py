"""/diagnostics from every node over real DDS, on a real clip: the camera, face detection, expression and monitor
nodes each report the same fields with sane values and level OK; a threshold set at run time through the parameter
service turns a node's level to WARN (and only that node's), and input that stops turns it to ERROR."""
from __future__ import annotations

from collections import defaultdict

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import Image

from bag_helpers import video_frames
from conftest import media_path
from fer_perception.diagnostics_stats import FIELDS, Level
from fer_perception.graph import load_graph
from fer_perception.nodes.qos import SENSOR_QOS, reliable
from fer_perception.runner import start_graph
from ros_helpers import Client, await_subscribers, publish_clip, wait_until

STATUS_NAMES = {"camera": "camera: image source", "face_detection": "face_detection: face detection",
                "expression": "expression: expression stage", "monitor": "monitor: monitor"}
IMAGE_TOPIC = "/fer_test/diagnostics/image"


class StatusLog:
    """Every status received on /diagnostics, by name, in order."""

    def __init__(self, client: Client):
        self.by_name: dict[str, list[DiagnosticStatus]] = defaultdict(list)
        client.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_array, reliable(50))

    def _on_array(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.by_name[status.name].append(status)

    def working(self, name: str) -> list[DiagnosticStatus]:
        """The statuses of ``name`` once it has processed a frame."""
        return [s for s in self.by_name[name] if int(values(s)["frames_processed"]) > 0]


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def level(status: DiagnosticStatus) -> Level:
    return Level(status.level[0])


def test_every_node_reports_the_same_fields_with_sane_values(ros_context, tmp_path):
    clip = media_path("single_face.mp4")
    specs = load_graph().resolve({"source": str(clip), "loop": "true", "monitor": "true", "out_dir": str(tmp_path)})
    for spec in specs:
        if spec.name == "camera":
            spec.overrides["rate"] = 15.0
    group = start_graph(specs)
    group.spin_in_thread()
    client = Client(ros_context, "fer_test_diagnostics_graph")
    log = StatusLog(client)
    try:
        assert wait_until(lambda: all(len(log.working(name)) >= 4 for name in STATUS_NAMES.values()), 90.0,
                          client.spin), {name: len(log.working(name)) for name in STATUS_NAMES.values()}
    finally:
        group.shutdown()
        client.close()

    for name in STATUS_NAMES.values():
        assert all(tuple(values(s)) == FIELDS for s in log.by_name[name]), f"{name}: another field set"
        recent = log.working(name)[-3:]
        assert Level.OK in map(level, recent) and Level.ERROR not in map(level, recent), \
            [(s.level, s.message) for s in recent]
        last = values(recent[-1])
        assert 9.0 < float(last["input_rate_hz"]) < 21.0, f"{name}: {last['input_rate_hz']} Hz for a 15 Hz camera"
        assert 0.0 < float(last["processing_p50_ms"]) <= float(last["processing_p95_ms"]) < 1000.0, (name, last)
        assert int(last["frames_received"]) >= int(last["frames_processed"]) > 0, (name, last)
        causes = [] if last["dropped_by_cause"] == "none" else last["dropped_by_cause"].split(", ")
        assert int(last["frames_dropped"]) == sum(int(cause.rsplit(": ", 1)[1]) for cause in causes), (name, last)
        assert float(last["seconds_since_input"]) < 1.0, (name, last)
    camera, face, expression, monitor = (log.working(STATUS_NAMES[n])[-1] for n in STATUS_NAMES)
    assert camera.hardware_id.endswith("single_face.mp4") and values(camera)["faces_tracked"] == "n/a"
    assert values(camera)["backend"].startswith("OpenCV")
    assert face.hardware_id == monitor.hardware_id == "/camera/image_raw" and expression.hardware_id == "/fer/faces"
    assert values(face)["backend"] == "mediapipe_full_range"
    assert values(expression)["backend"].startswith("emotion fer2013") and "AUs by" in values(expression)["backend"]
    # The clip shows one face throughout.
    assert [values(s)["faces_tracked"] for s in (face, expression, monitor)] == ["1", "1", "1"]


def test_a_threshold_set_at_run_time_warns_and_input_that_stops_is_an_error(ros_context):
    specs = load_graph().resolve({"camera": "false", "image": IMAGE_TOPIC})
    for spec in specs:
        spec.overrides.update(diagnostics_period=0.5, diagnostics_stale_s=1.5)
    group = start_graph(specs)
    group.spin_in_thread()
    client = Client(ros_context, "fer_test_diagnostics_levels")
    log = StatusLog(client)
    face, expression = STATUS_NAMES["face_detection"], STATUS_NAMES["expression"]
    publisher = client.node.create_publisher(Image, IMAGE_TOPIC, SENSOR_QOS)
    parameters = AsyncParameterClient(client.node, "/face_detection")
    frames = video_frames(media_path("single_face.mp4"))[0][:36]
    try:
        assert await_subscribers([publisher], client.spin)
        sent = publish_clip(publisher, frames, 1_000_000_000_000, 12.0, "fer_test_camera", client.spin)
        before = {name: len(log.by_name[name]) for name in (face, expression)}
        assert parameters.wait_for_services(10.0)
        future = parameters.set_parameters([Parameter("diagnostics_max_p95_ms", value=0.001)])
        assert wait_until(future.done, 10.0, client.spin) and future.result().results[0].successful
        publish_clip(publisher, frames, sent[-1] + 83_333_333, 12.0, "fer_test_camera", client.spin)
        stopped = {name: len(log.by_name[name]) for name in (face, expression)}
        assert wait_until(lambda: all(level(log.by_name[n][-1]) == Level.ERROR for n in (face, expression)), 10.0,
                          client.spin), [(n, log.by_name[n][-1].message) for n in (face, expression)]
    finally:
        group.shutdown()
        client.close()

    # From the first frame on: before it, the nodes rightly said that no input came.
    first = {name: [s for s in log.by_name[name][:before[name]] if int(values(s)["frames_received"]) > 0]
             for name in (face, expression)}
    second = {name: log.by_name[name][before[name] + 1:stopped[name]] for name in (face, expression)}
    assert Level.OK in map(level, first[face]), [(s.level, s.message) for s in first[face]]
    assert any(level(s) == Level.WARN and "processing p95" in s.message and "above 0.001 ms" in s.message
               for s in second[face]), [s.message for s in second[face]]
    assert Level.OK in map(level, second[expression]), "the face node's threshold changed the expression node's"
    assert all(level(s) != Level.ERROR for name in (face, expression) for s in first[name] + second[name])
    for name in (face, expression):
        assert log.by_name[name][-1].message.startswith("no input for"), log.by_name[name][-1].message
