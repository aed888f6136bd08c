"""face_detection_node: camera frames in, tracked faces (and, on demand, aligned crops) out.

The subscription callback only stores the newest frame; a worker thread
decodes it and runs the ROS-free :class:`FaceFrontEnd`, so the node always
works on the newest frame and counts those it skipped. Bad frames are logged
(rate-limited, naming the topic and the problem), counted by cause and
skipped; the node never dies on input. Crops are computed only while someone
subscribes to them. Its status (rates, processing times, drops, faces) goes
to ``/diagnostics`` (:mod:`fer_perception.nodes.diagnostics`).

It is a lifecycle node (:mod:`fer_perception.nodes.lifecycle`): configuring
checks the parameters and creates the publishers; activating loads the
MediaPipe graphs and subscribes to the camera; deactivating unsubscribes, stops
the worker and releases the graphs, so an inactive node neither receives nor
processes frames and holds no model. Loading them again takes about 0.3 s
(measured on this 2-core machine), less than keeping their memory and threads
for a paused node is worth.
"""
from __future__ import annotations

import threading
import time
from dataclasses import fields, replace

import cv2
import numpy as np
from fer_msgs.msg import FaceCrops, Faces
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from fer_perception.diagnostics_stats import BUSY, FAILED, drop_summary
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig
from fer_perception.face.parameters import DEFAULTS, FRONT_END_PARAMS
from fer_perception.image_codec import ImageDecodeError, decode_compressed, decode_image
from fer_perception.latest_slot import LatestSlot, SequenceGaps
from fer_perception.nodes.diagnostics import DIAGNOSTICS_PARAMS, NodeDiagnostics
from fer_perception.nodes.messages import crops_msg, faces_msg
from fer_perception.nodes.lifecycle import ManagedNode, reports_start_errors
from fer_perception.nodes.log_throttle import CauseThrottle
from fer_perception.nodes.parameters import Param, parameter_values
from fer_perception.nodes.qos import NEWEST_FRAME_QOS, QOS_OVERRIDES, reliable
from fer_perception.nodes.runtime import node_main

NODE_PARAMS = [
    Param("input_transport", "raw", "Subscribe to sensor_msgs/Image on 'image' (raw) or to "
          "sensor_msgs/CompressedImage on '<image>/compressed' (compressed).", choices=("raw", "compressed"),
          read_only=True),
    *DIAGNOSTICS_PARAMS,
]


class FaceDetectionNode(ManagedNode):
    """Thin ROS shell around :class:`FaceFrontEnd`: decode, process, publish with the source header."""

    def __init__(self, node_name: str = "face_detection", **kwargs):
        super().__init__(node_name, FRONT_END_PARAMS + NODE_PARAMS, **kwargs)
        self.bad_frame_warnings = CauseThrottle()
        self.frames: LatestSlot[Image | CompressedImage] = LatestSlot()
        self.unseen = SequenceGaps()
        self.crops_published = 0
        self.diagnostics = NodeDiagnostics(self, "face detection")
        self.front_end_config: FaceFrontEndConfig | None = None
        self.front_end: FaceFrontEnd | None = None
        self._pending_config: FaceFrontEndConfig | None = None
        self.faces_pub = self.crops_pub = None
        self.input_topic = ""
        self._compressed = False
        self._subscription = None
        self._worker: threading.Thread | None = None
        self._running = False
        self.add_on_set_parameters_callback(self._on_parameters)

    @reports_start_errors
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        values = parameter_values(self, FRONT_END_PARAMS + NODE_PARAMS)
        self.front_end_config = replace(DEFAULTS, **{p.name: values[p.name] for p in FRONT_END_PARAMS})
        self._pending_config = None
        self._compressed = values["input_transport"] == "compressed"
        self.input_topic = self.resolve_topic_name("image") + ("/compressed" if self._compressed else "")
        self.faces_pub = self.create_lifecycle_publisher(Faces, "faces", reliable(10),
                                                         qos_overriding_options=QOS_OVERRIDES)
        self.crops_pub = self.create_lifecycle_publisher(FaceCrops, "face_crops", reliable(10),
                                                         qos_overriding_options=QOS_OVERRIDES)
        self.diagnostics.create_publisher()
        return super().on_configure(state)

    @reports_start_errors
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._pending_config is not None:
            self.front_end_config, self._pending_config = self._pending_config, None
        self.front_end = FaceFrontEnd(self.front_end_config)
        self.frames, self.unseen, self.crops_published = LatestSlot(), SequenceGaps(), 0
        result = super().on_activate(state)  # the publishers publish from here on
        self.diagnostics.start(self.input_topic, self.front_end_config.detector)
        if self._compressed:
            self._subscription = self.create_subscription(CompressedImage, self.input_topic, self._on_frame,
                                                          NEWEST_FRAME_QOS, qos_overriding_options=QOS_OVERRIDES)
        else:
            self._subscription = self.create_subscription(Image, "image", self._on_frame, NEWEST_FRAME_QOS,
                                                          qos_overriding_options=QOS_OVERRIDES)
        self._running = True
        self._worker = threading.Thread(target=self._work, name="face_detection_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(f"detecting faces on {self.input_topic} with {self.front_end_config.detector}")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.destroy_subscription(self._subscription)
        self._subscription = None
        self.diagnostics.stop()
        self._running = False
        self.frames.close()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None
        self.front_end.close()
        self.front_end = None
        stats = self.diagnostics.stats
        self.get_logger().info(f"frames received {stats.received_total}, processed {stats.processed_total}, "
                               f"dropped {drop_summary(stats.dropped_by_cause())}")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.destroy_lifecycle_publisher(self.faces_pub)
        self.destroy_lifecycle_publisher(self.crops_pub)
        self.faces_pub = self.crops_pub = None
        self.diagnostics.destroy_publisher()
        self.front_end_config = self._pending_config = None
        return super().on_cleanup(state)

    def _on_frame(self, msg: Image | CompressedImage, info: dict) -> None:
        """Keep the newest frame; frames overwritten in the DDS queue or in the slot while the node was busy
        are dropped as busy."""
        stats = self.diagnostics.stats
        stats.received()
        stats.dropped(BUSY, self.unseen.observe(info["publisher_gid"]["data"], info.get("publication_sequence_number")))
        if self.frames.put(msg):
            stats.dropped(BUSY)

    def _on_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        """Validate front-end changes as a whole; an accepted change restarts tracking. Before the node is
        configured the parameters are only declared (configuring reads them)."""
        names = {f.name for f in fields(FaceFrontEndConfig)}
        updates = {p.name: p.value for p in changes if p.name in names}
        current = self._pending_config or self.front_end_config
        if not updates or current is None:
            return SetParametersResult(successful=True)
        try:
            config = replace(current, **updates)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        self._pending_config = config
        return SetParametersResult(successful=True)

    def _work(self) -> None:
        while self._running:
            msg = self.frames.take(timeout=0.2)
            if msg is None:
                continue
            try:
                self._process(msg)
            except Exception as error:  # noqa: BLE001 - the node must survive any frame
                self.diagnostics.stats.dropped(FAILED)
                self.get_logger().error(f"{self.input_topic}: frame failed: {error!r}", throttle_duration_sec=5.0)

    def _apply_pending_config(self) -> None:
        config, self._pending_config = self._pending_config, None
        if config is None:
            return
        self.front_end.close()
        self.front_end_config = config
        self.front_end = FaceFrontEnd(config)
        self.diagnostics.backend = config.detector
        self.get_logger().info("face front-end parameters changed: tracking restarted")

    def _process(self, msg: Image | CompressedImage) -> None:
        self._apply_pending_config()
        started = time.monotonic()
        try:
            image_rgb = cv2.cvtColor(self._decode(msg), cv2.COLOR_BGR2RGB)
        except ImageDecodeError as error:
            self.diagnostics.stats.dropped(error.cause)
            if self.bad_frame_warnings.due(error.cause):
                self.get_logger().warning(f"{self.input_topic}: skipping frame: {error}"
                                          f"{self.bad_frame_warnings.note(error.cause)}")
            return
        header: Header = msg.header
        frame = self.front_end.process(image_rgb, header.stamp.sec * 1_000_000_000 + header.stamp.nanosec)
        self.faces_pub.publish(faces_msg(frame, header))
        if self.crops_pub.get_subscription_count() > 0:
            crops = [self.front_end.crop(image_rgb, face) for face in frame.faces]
            self.crops_pub.publish(crops_msg(frame, crops, header))
            self.crops_published += 1
        self.diagnostics.stats.faces = len(frame.faces)
        self.diagnostics.stats.processed(time.monotonic() - started)

    @staticmethod
    def _decode(msg: Image | CompressedImage) -> np.ndarray:
        if isinstance(msg, CompressedImage):
            return decode_compressed(msg.format, msg.data)
        return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)


main = node_main(FaceDetectionNode)

if __name__ == "__main__":
    main()
