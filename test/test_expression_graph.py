"""camera frames -> faces -> expressions -> events over real DDS, on real clips in which a face appears; the
expression node's neutral capture service; frames that stop or whose stamps go back; a burst of frames; a slow
subscriber; twenty faces in one frame."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from fer_msgs.msg import Event, Events, Expressions
from fer_msgs.srv import CaptureNeutral
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from conftest import media_path
from fer_perception.diagnostics_stats import FIELDS
from fer_perception.face.detector import create_detector
from fer_perception.graph import NodeSpec, load_graph
from fer_perception.nodes.messages import bgr8_image_msg, ns_to_stamp, stamp_to_ns
from fer_perception.nodes.qos import SENSOR_QOS, reliable
from fer_perception.runner import start_graph
from ros_helpers import Client, await_subscribers, publish_clip, wait_until
from test_graph import read_frames

IMAGE_TOPIC = "/fer_test/expression_graph/image"
NEUTRAL_TOPICS = "/fer_test/neutral/"  # the neutral capture test's graph: its own topics and service
NEUTRAL_SERVICE = NEUTRAL_TOPICS + "capture_neutral"
STALL_TOPICS = "/fer_test/stall/"
BURST_TOPICS = "/fer_test/burst/"
SLOW_TOPICS = "/fer_test/slow/"
CROWD_TOPICS = "/fer_test/crowd/"
NS = 1_000_000_000


def test_a_face_appearing_in_a_clip_gives_expressions_and_closed_events(ros_context):
    specs = load_graph().resolve({"camera": "false", "image": IMAGE_TOPIC})
    for spec in specs:
        if spec.name == "face_detection":
            spec.overrides["deterministic_ids"] = True
    group = start_graph([s for s in specs])
    group.spin_in_thread()
    client = Client(ros_context, "fer_test_expression_client")
    node = client.node
    expressions: list[Expressions] = []
    events: list[Event] = []
    diagnostics: list[DiagnosticArray] = []
    node.create_subscription(Expressions, "/fer/expressions", expressions.append, reliable(200))
    node.create_subscription(Events, "/fer/events", lambda m: events.extend(m.events), reliable(200))
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, reliable(10))
    debug_images: list[Image] = []
    node.create_subscription(Image, "/fer/debug_image", debug_images.append, reliable(10))
    publisher = node.create_publisher(Image, IMAGE_TOPIC, SENSOR_QOS)
    spin = client.spin
    try:
        assert await_subscribers([publisher], spin)

        def arrived(stamp: int) -> bool:
            return bool(expressions) and stamp_to_ns(expressions[-1].header.stamp) == stamp

        sent = publish_clip(publisher, read_frames("noface_face.mov"), 2_000_000_000_000, 26.0, "fer_test_camera",
                            spin, arrived=arrived)
        wait_until(lambda: diagnostics, 2.0, spin)
    finally:
        group.shutdown()
        wait_until(lambda: False, 0.5, spin)
        client.close()

    assert expressions, "no expressions arrived"
    stamps = [stamp_to_ns(m.header.stamp) for m in expressions]
    assert set(stamps) <= set(sent) and stamps == sorted(stamps)
    assert all(m.header.frame_id == "fer_test_camera" for m in expressions)
    with_face = [m for m in expressions if m.expressions]
    assert len(expressions) == len(sent)
    assert len(with_face) > 55 and {e.face_id for m in with_face for e in m.expressions} == {"f0"}
    first_face = sent.index(stamp_to_ns(with_face[0].header.stamp))
    assert first_face >= 75, f"a face was reported at frame {first_face}, before it enters the clip"
    sample = with_face[-1].expressions[0]
    assert any(sample.au_estimated) and sample.emotion_estimated
    assert all(0 <= v <= 5 for v in sample.au_intensity)
    assert abs(sum(sample.emotion_probabilities) - 1) < 1e-3

    appeared = [e for e in events if e.kind == Event.KIND_FACE_APPEARED]
    assert len(appeared) == 1 and appeared[0].face_id == "f0"
    assert all(stamp_to_ns(e.start) >= stamp_to_ns(appeared[0].start) for e in events)
    onsets = {e.event_id for e in events if e.phase == Event.ONSET}
    offsets = {e.event_id for e in events if e.phase == Event.OFFSET}
    assert onsets == offsets, f"episodes left open at shutdown: {onsets - offsets}"
    assert debug_images and all(stamp_to_ns(m.header.stamp) in set(sent) for m in debug_images)
    assert (debug_images[-1].width, debug_images[-1].height) == (960, 540)
    expression_status = [s for m in diagnostics for s in m.status if s.name == "expression: expression stage"]
    assert expression_status and tuple(kv.key for kv in expression_status[-1].values) == FIELDS


def _graph_under(prefix: str, **face_parameters: object) -> list[NodeSpec]:
    """The graph with deterministic ids (and ``face_parameters`` for the face node), its topics and the capture
    service under ``prefix``, so that no other test's graph can answer it."""
    specs = []
    for spec in load_graph().resolve({"camera": "false", "image": prefix + "image"}):
        remappings = tuple((name, topic.replace("/fer/", prefix)) for name, topic in spec.remappings)
        if spec.name == "expression":
            remappings += (("~/capture_neutral", prefix + "capture_neutral"),)
        if spec.name == "face_detection":
            spec.overrides.update(deterministic_ids=True, **face_parameters)
        specs.append(replace(spec, remappings=remappings))
    return specs


class ListeningGraph:
    """The graph under its own topic prefix, and a test client publishing images and keeping what comes out."""

    def __init__(self, context, prefix: str, name: str, depth: int, **face_parameters: object):
        self.group = start_graph(_graph_under(prefix, **face_parameters))
        self.group.spin_in_thread()
        self.client = Client(context, name)
        self.expressions: list[Expressions] = []
        self.events: list[Event] = []
        node = self.client.node
        node.create_subscription(Expressions, prefix + "expressions", self.expressions.append, reliable(depth))
        node.create_subscription(Events, prefix + "events", lambda m: self.events.extend(m.events), reliable(depth))
        self.publisher = node.create_publisher(Image, prefix + "image", SENSOR_QOS)

    def arrived(self, stamp: int) -> bool:
        return bool(self.expressions) and stamp_to_ns(self.expressions[-1].header.stamp) == stamp

    def close(self) -> None:
        self.group.shutdown()
        wait_until(lambda: False, 0.5, self.client.spin)
        self.client.close()


def test_capture_neutral_calibrates_a_face_fully_after_its_duration(ros_context):
    duration_s, fps = 0.4, 30.0
    group = start_graph(_graph_under(NEUTRAL_TOPICS))
    group.spin_in_thread()
    client = Client(ros_context, "fer_test_neutral_client")
    expressions: list[Expressions] = []
    client.node.create_subscription(Expressions, NEUTRAL_TOPICS + "expressions", expressions.append, reliable(200))
    publisher = client.node.create_publisher(Image, NEUTRAL_TOPICS + "image", SENSOR_QOS)
    service = client.node.create_client(CaptureNeutral, NEUTRAL_SERVICE)
    frames = read_frames("single_face.mp4")[:24]

    def arrived(stamp: int) -> bool:
        return bool(expressions) and stamp_to_ns(expressions[-1].header.stamp) == stamp

    def capture(face_ids: list[str]) -> CaptureNeutral.Response:
        future = service.call_async(CaptureNeutral.Request(face_ids=face_ids, duration=duration_s))
        assert wait_until(future.done, 10.0, client.spin), "capture_neutral did not answer"
        return future.result()

    try:
        assert await_subscribers([publisher], client.spin) and service.wait_for_service(timeout_sec=20.0)
        before = publish_clip(publisher, frames[:6], 3 * NS, fps, "fer_test_camera", client.spin, arrived=arrived)
        unknown, response = capture(["nobody"]), capture(["f0"])
        after = publish_clip(publisher, frames[6:], before[-1] + round(NS / fps), fps, "fer_test_camera",
                             client.spin, arrived=arrived)
    finally:
        group.shutdown()
        wait_until(lambda: False, 0.5, client.spin)
        client.close()

    assert not unknown.success and "nobody" in unknown.message and not unknown.face_ids
    assert response.success and list(response.face_ids) == ["f0"], response.message
    calibration = {stamp_to_ns(m.header.stamp): m.expressions[0].au_calibration for m in expressions if m.expressions}
    captured_at = after[0] + duration_s * NS  # the capture starts with the first frame after the call
    uncaptured = [calibration[s] for s in [*before, *after] if s in calibration and s < captured_at]
    captured = [calibration.get(s) for s in after if s >= captured_at + NS / fps]  # one frame's margin
    assert uncaptured and max(uncaptured) < 1
    assert captured and set(captured) == {1.0}


def test_frames_that_stop_or_go_back_in_time_close_every_episode_in_time(ros_context):
    fps, smile = 30.0, read_frames("single_face.mp4")[25:55]  # a broad smile from its first frame
    graph = ListeningGraph(ros_context, STALL_TOPICS, "fer_test_stall_client", 200)
    spin, events = graph.client.spin, graph.events
    try:
        assert await_subscribers([graph.publisher], spin)
        first = publish_clip(graph.publisher, smile, 50 * NS, fps, "fer_test_camera", spin, arrived=graph.arrived)
        # The camera dies: no frame for longer than track_timeout_s (3 s); the node must close the track itself.
        closed = wait_until(lambda: any(e.kind == Event.KIND_FACE_LOST for e in events), 6.0, spin)
        lost_after_stall = [e for e in events if e.kind == Event.KIND_FACE_LOST]
        # A replay loops: the stamps start again before the last one.
        second = publish_clip(graph.publisher, smile, 40 * NS, fps, "fer_test_camera", spin, arrived=graph.arrived)
        publish_clip(graph.publisher, smile[:10], 30 * NS, fps, "fer_test_camera", spin, arrived=graph.arrived)
    finally:
        graph.close()

    assert closed and len(lost_after_stall) == 1, "frames stopped but the track was not closed"
    assert stamp_to_ns(lost_after_stall[0].start) > first[-1] + 3 * NS
    smiles = [e for e in events if e.kind == Event.KIND_SMILE]
    assert smiles and smiles[0].phase == Event.ONSET
    first_offset = next(e for e in smiles if e.phase == Event.OFFSET)
    assert stamp_to_ns(first_offset.end) <= stamp_to_ns(lost_after_stall[0].start), "the smile stayed open"
    went_back = [e for e in events if e.kind == Event.KIND_FACE_LOST and stamp_to_ns(e.start) == second[-1]]
    assert went_back, "the stamps went back but the tracks of the later time were not closed at its last stamp"
    assert all(e.duration >= 0 for e in events), "an episode got a negative duration"
    assert all(stamp_to_ns(e.end) >= stamp_to_ns(e.start) for e in events if e.phase != Event.ONSET)
    onsets = {e.event_id for e in events if e.phase == Event.ONSET}
    offsets = {e.event_id for e in events if e.phase == Event.OFFSET}
    assert onsets == offsets, f"episodes left open: {onsets - offsets}"


def test_a_burst_of_300_frames_as_fast_as_possible_is_survived_and_the_newest_frame_processed(ros_context):
    burst = (read_frames("single_face.mp4") * 5)[:300]
    graph = ListeningGraph(ros_context, BURST_TOPICS, "fer_test_burst_client", 400)
    spin, expressions = graph.client.spin, graph.expressions
    try:
        assert await_subscribers([graph.publisher], spin)
        sent = publish_clip(graph.publisher, burst[:1], 70 * NS, 30.0, "fer_test_camera", spin,
                            arrived=lambda stamp: bool(expressions))  # the models are warm
        for index, frame in enumerate(burst[1:], start=1):  # back to back, no pause
            sent.append(70 * NS + index * NS // 30)
            graph.publisher.publish(bgr8_image_msg(frame, Header(stamp=ns_to_stamp(sent[-1]),
                                                                 frame_id="fer_test_camera")))
        last_arrived = wait_until(lambda: graph.arrived(sent[-1]), 30.0, spin)
    finally:
        graph.close()
    assert last_arrived, "the graph did not come back to the newest frame after the burst"
    stamps = [stamp_to_ns(m.header.stamp) for m in expressions]
    assert stamps == sorted(stamps) and set(stamps) <= set(sent)
    assert any(m.expressions for m in expressions)
    onsets = {e.event_id for e in graph.events if e.phase == Event.ONSET}
    assert onsets == {e.event_id for e in graph.events if e.phase == Event.OFFSET}


def test_a_subscriber_taking_a_second_per_message_does_not_stall_the_perception(ros_context):
    frames = read_frames("single_face.mp4")[:45]
    group = start_graph(_graph_under(SLOW_TOPICS))
    group.spin_in_thread()
    fast, slow = Client(ros_context, "fer_test_fast_client"), Client(ros_context, "fer_test_slow_client")
    expressions: list[Expressions] = []
    handled: list[Expressions] = []
    fast.node.create_subscription(Expressions, SLOW_TOPICS + "expressions", expressions.append, reliable(100))
    slow.node.create_subscription(Expressions, SLOW_TOPICS + "expressions",
                                  lambda m: (time.sleep(1.0), handled.append(m)), reliable(10))
    stop = threading.Event()
    slow_thread = threading.Thread(target=lambda: [slow.spin() for _ in iter(stop.is_set, True)], daemon=True)
    publisher = fast.node.create_publisher(Image, SLOW_TOPICS + "image", SENSOR_QOS)

    def arrived(stamp: int) -> bool:
        return bool(expressions) and stamp_to_ns(expressions[-1].header.stamp) == stamp

    try:
        assert await_subscribers([publisher], fast.spin)
        slow_thread.start()
        started = time.monotonic()
        sent = publish_clip(publisher, frames, 90 * NS, 30.0, "fer_test_camera", fast.spin, arrived=arrived,
                            timeout_s=2.0)
        took = time.monotonic() - started
    finally:
        stop.set()
        slow_thread.join(timeout=5.0)
        group.shutdown()
        wait_until(lambda: False, 0.5, fast.spin)
        fast.close()
        slow.close()
    assert [stamp_to_ns(m.header.stamp) for m in expressions] == sent
    assert len(handled) < len(sent) / 3, "the slow subscriber is slow: it saw only a few messages"
    assert took < len(sent) * 0.5, f"the perception waited for the slow subscriber ({took:.1f} s for {len(sent)})"


def crowd_frame(tile: int = 200) -> tuple[np.ndarray, int]:
    """Twenty faces in one frame, and how many of them the face detector finds there.

    The five people of the shared group photo, each cut out around the face the detector finds there, tiled four
    times into a 4 x 5 grid of ``tile``-pixel squares (every other tile mirrored, each row starting two people
    later). MediaPipe's full-range detector finds 17 of the 20 (it misses a few whichever the layout).
    """
    photo = cv2.imread(str(media_path("multi_face.jpg")))
    detector = create_detector("mediapipe_full_range", 0.5)
    try:
        found = sorted(detector.detect(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)), key=lambda d: d.box.x)
        assert len(found) == 5, f"expected the 5 faces of the group photo, the detector found {len(found)}"
        people = []
        for detection in found:
            box = detection.box
            side = round(max(box.width, box.height) * 1.4)
            x, y = round(box.x + box.width / 2 - side / 2), round(box.y + box.height / 2 - side / 2)
            padded = cv2.copyMakeBorder(photo, side, side, side, side, cv2.BORDER_REPLICATE)
            people.append(cv2.resize(padded[y + side:y + 2 * side, x + side:x + 2 * side], (tile, tile),
                                     interpolation=cv2.INTER_AREA))
        tiles = [[people[(2 * row + column) % 5] for column in range(5)] for row in range(4)]
        frame = np.ascontiguousarray(np.vstack([
            np.hstack([person[:, ::-1] if (row + column) % 2 else person for column, person in enumerate(line)])
            for row, line in enumerate(tiles)]))
        return frame, len(detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
    finally:
        detector.close()


@pytest.mark.parametrize("max_faces", [20, 5])
def test_twenty_faces_in_a_frame_are_tracked_up_to_max_faces_and_every_episode_closes(ros_context, max_faces):
    crowd, detected = crowd_frame()
    assert detected >= 15, f"the detector finds only {detected} of the 20 faces"
    empty = np.full_like(crowd, 128)  # everyone leaves
    graph = ListeningGraph(ros_context, CROWD_TOPICS, "fer_test_crowd_client", 400, max_faces=max_faces)
    spin, expressions, events = graph.client.spin, graph.expressions, graph.events
    try:
        assert await_subscribers([graph.publisher], spin)
        warm = publish_clip(graph.publisher, [crowd], 110 * NS, 10.0, "fer_test_camera", spin, arrived=graph.arrived)
        began = time.monotonic()
        sent = publish_clip(graph.publisher, [crowd] * 15, warm[-1] + NS // 10, 10.0, "fer_test_camera", spin,
                            arrived=graph.arrived)
        crowd_fps = len(sent) / (time.monotonic() - began)
        # No face for longer than max_misses (10 frames): the face node reports every track lost.
        publish_clip(graph.publisher, [empty] * 12, sent[-1] + NS // 10, 10.0, "fer_test_camera", spin,
                     arrived=graph.arrived)
        faces_seen = {e.face_id for m in expressions for e in m.expressions}
        wait_until(lambda: {e.face_id for e in events if e.kind == Event.KIND_FACE_LOST} >= faces_seen, 5.0, spin)
        onsets = {e.event_id for e in events if e.phase == Event.ONSET}
        offsets = {e.event_id for e in events if e.phase == Event.OFFSET}
    finally:
        graph.close()
    counts = [len(m.expressions) for m in expressions if stamp_to_ns(m.header.stamp) in set(sent)]
    assert len(counts) == len(sent), "every frame of twenty faces came through"
    assert max(counts) <= max_faces and counts[-1] == min(max_faces, detected), counts
    assert len(faces_seen) == counts[-1], f"ids changed while the same faces stayed in view: {sorted(faces_seen)}"
    last = next(m for m in reversed(expressions) if stamp_to_ns(m.header.stamp) == sent[-1])
    assert all(e.emotion_estimated and any(e.au_estimated) for e in last.expressions)
    assert crowd_fps > 1.0, f"{crowd_fps:.2f} frames per second with {counts[-1]} faces"
    lost = {e.face_id for e in events if e.kind == Event.KIND_FACE_LOST}
    assert lost == faces_seen, f"faces not reported lost after they left: {sorted(faces_seen - lost)}"
    assert onsets and onsets == offsets, f"episodes left open after the faces left: {onsets - offsets}"
