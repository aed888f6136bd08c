"""expression_node: faces (and crops) in, expressions and events out, for the behaviour layer.

It pairs the faces and crops messages by stamp and hands the newest pair to
a worker thread running the ROS-free :class:`ExpressionPipeline`; frames it
had no time for are counted as skipped, but the track losses they carried are
kept. It publishes the expressions message for every processed frame, an
events message whenever something happened, and its status on
``/diagnostics`` (:mod:`fer_perception.nodes.diagnostics`). While
someone subscribes to ``debug_image`` (checked twice a second), it also
subscribes to the camera, draws boxes, ids, labels and AU bars onto the frame
of the same stamp and publishes it. On
shutdown every open episode is closed and published before the node goes.
When frames stop arriving (camera dead, driver stalled), the tracks unseen for
``track_timeout_s`` are still closed, with their episodes, as time passes; a
stamp before the previous one (a replay looping, a clock reset) closes every
track and restarts tracking, with one warning.

The service ``~/capture_neutral`` (``fer_msgs/srv/CaptureNeutral``) takes the
next seconds of the named faces (or of every tracked face) as their neutral
face, the baseline AUs are read against: a robot asks the person to relax and
look at it, then calls it. The request is applied between two frames.

It is a lifecycle node (:mod:`fer_perception.nodes.lifecycle`): configuring
reads the parameters and the emotion configuration and creates the publishers
and the service; activating loads the emotion model and the AU estimator and
subscribes; deactivating closes every open episode (published), unsubscribes
and releases the models, which take about 0.2 s to load again (measured on
this 2-core machine), so an inactive node holds no model and does no work.
The service answers, without capturing, while the node is not active.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

from fer_msgs.msg import Events, Expressions, FaceCrops, Faces
from fer_msgs.srv import CaptureNeutral
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fer_perception.annotate import draw_faces
from fer_perception.au.estimators import au_estimator_names
from fer_perception.diagnostics_stats import BUSY, FAILED
from fer_perception.emotion.classifier import BACKENDS
from fer_perception.emotion.loading import load_emotion_model
from fer_perception.expression_pipeline import (EMOTION_SMOOTHING_METHODS, ExpressionFrame, ExpressionPipeline,
                                                load_yaml, pipeline_from_config)
from fer_perception.image_codec import ImageDecodeError, decode_image
from fer_perception.latest_slot import LatestSlot
from fer_perception.nodes.diagnostics import DIAGNOSTICS_PARAMS, NodeDiagnostics
from fer_perception.nodes.messages import (bgr8_image_msg, crop_images, events_msg, expressions_msg, face_frame,
                                           ns_to_stamp, stamp_to_ns)
from fer_perception.nodes.lifecycle import ManagedNode, reports_start_errors
from fer_perception.nodes.log_throttle import CauseThrottle
from fer_perception.nodes.parameters import Param, parameter_values
from fer_perception.nodes.qos import QOS_OVERRIDES, SENSOR_QOS, reliable
from fer_perception.nodes.runtime import node_main
from fer_perception.paths import config_path
from fer_perception.types import FaceFrame

PARAMS = [
    Param("au_config", str(config_path("action_units.yaml")), "AU estimator configuration file.", read_only=True),
    Param("emotion_config", str(config_path("emotion.yaml")), "Emotion classifier, FACS mapping, fusion and "
          "circumplex configuration file.", read_only=True),
    Param("expression_config", str(config_path("expression.yaml")), "Smoothing and event thresholds file.",
          read_only=True),
    Param("emotion_model", "", "Emotion classifier by name (classifier.models of emotion_config) or a .pt file; "
          "empty = classifier.model of emotion_config. An unknown name stops the node with the list of names.",
          read_only=True),
    Param("emotion_backend", "", "How the emotion classifier runs; empty = classifier.backend of emotion_config.",
          choices=("", *BACKENDS), read_only=True),
    Param("coarse_to_fine", None, "Label {neutral, happy, surprise, negative} first, then within negative; "
          "unset = coarse_to_fine of emotion_config.", value_type=bool, read_only=True),
    Param("emotion_smoothing", "", "How emotion probabilities are smoothed per face; empty = "
          "smoothing.emotion_method of expression_config.", choices=("", *EMOTION_SMOOTHING_METHODS),
          read_only=True),
    Param("au_estimator", "", "AU estimator by name; empty = the one in au_config.",
          choices=("", *au_estimator_names()), read_only=True),
    Param("neutral_capture_duration_s", 2.0, "Seconds of frames a neutral capture (service capture_neutral) "
          "takes as the face's neutral face when the request gives no duration.", min=0.1, max=30.0),
    *DIAGNOSTICS_PARAMS,
]
PAIRING_WINDOW = 30  # faces/crops messages kept while waiting for their partner
NO_CROPS = "no crops"  # why a faces message was dropped: its crops did not come while it was the newest
DEBUG_SUBSCRIBER_CHECK_S = 0.5  # how often the node looks for debug_image subscribers


class ExpressionNode(ManagedNode):
    """Thin ROS shell around :class:`ExpressionPipeline`."""

    def __init__(self, node_name: str = "expression", **kwargs):
        super().__init__(node_name, PARAMS, **kwargs)
        self.bad_frame_warnings = CauseThrottle()
        self.config: dict = {}
        self.emotion_config: dict | None = None
        self.pipeline: ExpressionPipeline | None = None
        self.expressions_pub = self.events_pub = self.debug_pub = None
        self.diagnostics = NodeDiagnostics(self, "expression stage")
        self._capture_service = None
        self._input_subscriptions: list = []  # created on activate
        self._activity_timers: list = []
        # Camera frames are only needed for the debug image: subscribing only while someone watches it
        # saves deserialising every frame (the graph's largest message) for nothing.
        self._image_subscription = None
        self.frames: LatestSlot[tuple[Faces, FaceCrops | None]] = LatestSlot()
        self._worker: threading.Thread | None = None
        self._running = False
        self._images: deque[Image] = deque(maxlen=PAIRING_WINDOW)
        self._faces: deque[Faces] = deque(maxlen=PAIRING_WINDOW)
        self._crops: deque[FaceCrops] = deque(maxlen=PAIRING_WINDOW)
        self._pair_lock = threading.Lock()
        self._pending_lost: list[str] = []
        # The pipeline is not thread-safe: the worker's frames and the service's captures take turns.
        self._pipeline_lock = threading.Lock()
        self._forget_last_frame()

    def _forget_last_frame(self) -> None:
        self._last_header: Header | None = None
        self._last_frame_monotonic = 0.0

    @reports_start_errors
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.config = parameter_values(self, PARAMS)
        self.emotion_config = load_yaml(Path(self.config["emotion_config"]))
        self.expressions_pub = self.create_lifecycle_publisher(Expressions, "expressions", reliable(10),
                                                               qos_overriding_options=QOS_OVERRIDES)
        self.events_pub = self.create_lifecycle_publisher(Events, "events", reliable(100),
                                                          qos_overriding_options=QOS_OVERRIDES)
        self.diagnostics.create_publisher()
        self.debug_pub = self.create_lifecycle_publisher(Image, "debug_image", reliable(2),
                                                         qos_overriding_options=QOS_OVERRIDES)
        self._capture_service = self.create_service(CaptureNeutral, "~/capture_neutral", self._capture_neutral)
        return super().on_configure(state)

    @reports_start_errors
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        classifier = load_emotion_model(self.emotion_config, self.get_logger().warning,
                                        self.config["emotion_model"] or None, self.config["emotion_backend"] or None)
        pipeline = pipeline_from_config(
            classifier, Path(self.config["au_config"]), Path(self.config["emotion_config"]),
            Path(self.config["expression_config"]), self.config["au_estimator"] or None,
            self.config["coarse_to_fine"], self.config["emotion_smoothing"] or None,
            self.config["emotion_model"] or None)
        with self._pipeline_lock:
            self.pipeline = pipeline
        self._forget_last_frame()
        self.frames = LatestSlot()
        result = super().on_activate(state)  # the publishers publish from here on
        section = self.emotion_config["classifier"]
        emotion = (f"emotion {self.config['emotion_model'] or section['model']} ({classifier.backend})"
                   if classifier is not None else "emotion by FACS mapping only")
        self.diagnostics.start(self.resolve_topic_name("faces"), f"{emotion}, AUs by {pipeline.au_estimator.name}")
        self._input_subscriptions = [self.create_subscription(Faces, "faces", self._on_faces, reliable(10),
                                                              qos_overriding_options=QOS_OVERRIDES)]
        if pipeline.needs_crops:
            self._input_subscriptions.append(self.create_subscription(
                FaceCrops, "face_crops", self._on_crops, reliable(10), qos_overriding_options=QOS_OVERRIDES))
        self._activity_timers = [self.create_timer(DEBUG_SUBSCRIBER_CHECK_S, self._follow_debug_subscribers)]
        self._running = True
        self._worker = threading.Thread(target=self._work, name="expression_worker", daemon=True)
        self._worker.start()
        sources = "learned + FACS" if classifier is not None else "FACS mapping only"
        decision = ", coarse-to-fine" if pipeline.coarse_to_fine else ""
        self.get_logger().info(f"AUs by {pipeline.au_estimator.name}, emotion from {sources}{decision}, "
                               f"{pipeline.smoothing.emotion_method} smoothing")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        for subscription in self._input_subscriptions:
            self.destroy_subscription(subscription)
        for timer in self._activity_timers:
            self.destroy_timer(timer)
        self._input_subscriptions, self._activity_timers = [], []
        self.diagnostics.stop()
        self._follow_debug_subscribers(watched=False)
        self._running = False
        self.frames.close()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None
        with self._pipeline_lock:
            if self._last_header is not None:
                closing = self.pipeline.close(stamp_to_ns(self._last_header.stamp))
                if closing:
                    self.events_pub.publish(events_msg(closing, self._last_header))
                    self.get_logger().info(f"closed {len(closing)} open episode(s)")
            self.pipeline = None
        with self._pair_lock:
            self._faces.clear()
            self._crops.clear()
            self._pending_lost = []
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for publisher in (self.expressions_pub, self.events_pub, self.debug_pub):
            self.destroy_lifecycle_publisher(publisher)
        self.expressions_pub = self.events_pub = self.debug_pub = None
        self.diagnostics.destroy_publisher()
        self.destroy_service(self._capture_service)
        self._capture_service = None
        self.emotion_config = None
        return super().on_cleanup(state)

    def _follow_debug_subscribers(self, watched: bool | None = None) -> None:
        """Subscribe to the camera while ``debug_image`` has subscribers (``watched`` forces the answer)."""
        watched = self.debug_pub.get_subscription_count() > 0 if watched is None else watched
        if watched and self._image_subscription is None:
            self._image_subscription = self.create_subscription(Image, "image", self._on_image, SENSOR_QOS,
                                                                qos_overriding_options=QOS_OVERRIDES)
        elif not watched and self._image_subscription is not None:
            self.destroy_subscription(self._image_subscription)
            self._image_subscription = None
            self._images.clear()

    def _on_image(self, msg: Image) -> None:
        self._images.append(msg)

    def _on_faces(self, msg: Faces) -> None:
        stats = self.diagnostics.stats
        stats.received()
        with self._pair_lock:
            self._pending_lost.extend(msg.lost_ids)
            if not self.pipeline.needs_crops:
                if self.frames.put((msg, None)):
                    stats.dropped(BUSY)
                return
            if len(self._faces) == self._faces.maxlen:
                stats.dropped(NO_CROPS)  # the oldest leaves the pairing window
            self._faces.append(msg)
            self._pair()

    def _on_crops(self, msg: FaceCrops) -> None:
        with self._pair_lock:
            self._crops.append(msg)
            self._pair()

    def _pair(self) -> None:
        """Hand over the newest faces message whose crops have arrived; older ones (no crops came for them) are
        dropped."""
        crops_by_stamp = {stamp_to_ns(c.header.stamp): c for c in self._crops}
        for faces in reversed(self._faces):
            crops = crops_by_stamp.get(stamp_to_ns(faces.header.stamp))
            if crops is not None:
                if self.frames.put((faces, crops)):
                    self.diagnostics.stats.dropped(BUSY)
                stamp = stamp_to_ns(faces.header.stamp)
                while self._faces and stamp_to_ns(self._faces[0].header.stamp) <= stamp:
                    if self._faces.popleft() is not faces:
                        self.diagnostics.stats.dropped(NO_CROPS)
                while self._crops and stamp_to_ns(self._crops[0].header.stamp) <= stamp:
                    self._crops.popleft()
                return

    def _work(self) -> None:
        while self._running:
            pair = self.frames.take(timeout=0.2)
            if pair is None:
                self._expire_idle_tracks()
                continue
            try:
                self._process(*pair)
            except Exception as error:  # noqa: BLE001 - the node must survive any frame
                self.diagnostics.stats.dropped(FAILED)
                self.get_logger().error(f"expression stage failed on a frame: {error!r}", throttle_duration_sec=5.0)

    def _process(self, faces: Faces, crops: FaceCrops | None) -> None:
        started = time.monotonic()
        frame = face_frame(faces)
        with self._pair_lock:
            frame.lost, self._pending_lost = list(dict.fromkeys([*self._pending_lost, *frame.lost])), []
        images = crop_images(crops) if crops is not None else None
        with self._pipeline_lock:
            result = self.pipeline.process(frame, images)
        if result.restarted_after_ns is not None:
            self.get_logger().warning(
                f"image stamps went back by {(result.restarted_after_ns - frame.stamp_ns) / 1e9:.3f} s (replay "
                "looped or clock reset): every face's episodes closed at the last stamp, tracking restarts",
                throttle_duration_sec=5.0)
        self.expressions_pub.publish(expressions_msg(result, faces.header))
        if result.events:
            self.events_pub.publish(events_msg(result.events, faces.header))
        if self.debug_pub.get_subscription_count() > 0:
            self._publish_debug_image(frame, result)
        self._last_header = faces.header
        self._last_frame_monotonic = time.monotonic()
        self.diagnostics.stats.faces = len(result.expressions)
        self.diagnostics.stats.processed(self._last_frame_monotonic - started)

    def _expire_idle_tracks(self) -> None:
        """Close the tracks of a graph whose frames stopped: source time is taken to run on with the wall
        clock since the last frame, so episodes end track_timeout_s after the face was last seen."""
        header, last_stamp_ns = self._last_header, self.pipeline.last_stamp_ns
        if header is None or last_stamp_ns is None or not self.pipeline.tracks:
            return
        idle_ns = int((time.monotonic() - self._last_frame_monotonic) * 1e9)
        if idle_ns <= self.pipeline.track_timeout_ns:
            return
        with self._pipeline_lock:
            events = self.pipeline.expire(last_stamp_ns + idle_ns)
        if events:
            self.events_pub.publish(events_msg(events, Header(stamp=ns_to_stamp(last_stamp_ns + idle_ns),
                                                              frame_id=header.frame_id)))
            self.get_logger().info(f"no frames for {idle_ns / 1e9:.1f} s: closed the tracks and episodes of "
                                   f"{', '.join(sorted({e.face_id for e in events}))}")

    def _capture_neutral(self, request: CaptureNeutral.Request,
                         response: CaptureNeutral.Response) -> CaptureNeutral.Response:
        """Start a neutral capture of the requested faces (every tracked one when none is named)."""
        duration = (request.duration if request.duration > 0
                    else self.get_parameter("neutral_capture_duration_s").value)
        with self._pipeline_lock:
            if self.pipeline is None:
                response.message = "the expression node is not active; nothing captured"
                return response
            captured = self.pipeline.capture_neutral(list(request.face_ids) or None, duration)
        response.face_ids = captured
        response.success = bool(captured)
        if not captured:
            wanted = f"none of {', '.join(request.face_ids)} is" if request.face_ids else "no face is"
            response.message = f"{wanted} tracked now; nothing captured"
            return response
        missing = [f for f in request.face_ids if f not in captured]
        response.message = (f"capturing the neutral face of {', '.join(captured)} over the next {duration:g} s"
                            + (f" ({', '.join(missing)} not tracked)" if missing else ""))
        self.get_logger().info(response.message)
        return response

    def _publish_debug_image(self, frame: FaceFrame, result: ExpressionFrame) -> None:
        source = next((m for m in list(self._images) if stamp_to_ns(m.header.stamp) == frame.stamp_ns), None)
        if source is None:
            return
        try:
            image = decode_image(source.encoding, source.height, source.width, source.step, source.is_bigendian,
                                 source.data)
        except ImageDecodeError as error:
            if self.bad_frame_warnings.due(error.cause):
                self.get_logger().warning(f"debug image: {error}{self.bad_frame_warnings.note(error.cause)}")
            return
        draw_faces(image, frame.faces, {e.face_id: e for e in result.expressions})
        self.debug_pub.publish(bgr8_image_msg(image, source.header))


main = node_main(ExpressionNode)

if __name__ == "__main__":
    main()
