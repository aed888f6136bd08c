"""Every node's health on ``/diagnostics``: one status per node with the same fields, in the robot's tools.

A roboticist watches a graph's health in ``rqt_robot_monitor`` or through a
``diagnostic_aggregator``; each node of the graph (camera, face detection,
expression, monitor) publishes one ``diagnostic_msgs/DiagnosticStatus``
named ``<node>: <role>`` every ``diagnostics_period``, with the fields of
:data:`fer_perception.diagnostics_stats.FIELDS` and a level set by the
node's threshold parameters (:data:`DIAGNOSTICS_PARAMS`). The figures are
counted by the ROS-free :class:`StageStats`; this module only reads the
thresholds and publishes. A lifecycle node creates the publisher when
configured (:meth:`NodeDiagnostics.create_publisher`), starts counting and
publishing when activated (:meth:`NodeDiagnostics.start`) and stops when
deactivated, so an inactive node reports nothing (an aggregator then shows
it stale); a plain node does both when constructed.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node

from fer_perception.diagnostics_stats import StageStats, Thresholds, assess, report_fields
from fer_perception.nodes.parameters import Param
from fer_perception.nodes.qos import QOS_OVERRIDES, reliable

DIAGNOSTICS_PARAMS = [
    Param("diagnostics_period", 1.0, "Seconds between /diagnostics messages; the input rate, processing times "
          "and dropped share cover the period before each.", min=0.1, max=60.0, read_only=True),
    Param("diagnostics_min_rate_hz", 5.0, "Input rate in Hz (over the last period) below which the node reports "
          "WARN; 0 = never.", min=0.0, max=1000.0),
    Param("diagnostics_max_p95_ms", 100.0, "95th percentile of the processing time per input in ms (over the "
          "last period) above which the node reports WARN; 0 = never.", min=0.0, max=60000.0),
    Param("diagnostics_max_drop_fraction", 0.5, "Share of the last period's inputs dropped (skipped as busy, "
          "bad frames) above which the node reports WARN; 1 = never.", min=0.0, max=1.0),
    Param("diagnostics_stale_s", 5.0, "Seconds without input after which the node reports ERROR (a source "
          "waiting for its subscribers or at its end is OK).", min=0.1, max=3600.0),
]


class NodeDiagnostics:
    """The ``/diagnostics`` status of one node: ``stats`` is counted by the node, and published with the level
    that the node's threshold parameters give."""

    def __init__(self, node: Node, role: str):
        self.node = node
        self.name = f"{node.get_name()}: {role}"
        self.stats = StageStats()
        self.hardware_id = self.backend = ""
        self._publisher = None
        self._timer = None

    def create_publisher(self) -> None:
        """Create the ``/diagnostics`` publisher (a lifecycle publisher for a lifecycle node)."""
        create = (self.node.create_lifecycle_publisher if isinstance(self.node, LifecycleNode)
                  else self.node.create_publisher)
        self._publisher = create(DiagnosticArray, "/diagnostics", reliable(10), qos_overriding_options=QOS_OVERRIDES)

    def destroy_publisher(self) -> None:
        self.node.destroy_lifecycle_publisher(self._publisher)
        self._publisher = None

    def start(self, hardware_id: str, backend: str) -> None:
        """Count afresh and publish every ``diagnostics_period``; ``hardware_id`` names the node's input,
        ``backend`` what it runs (detector, emotion model, video back-end)."""
        self.stats = StageStats()
        self.hardware_id, self.backend = hardware_id, backend
        self._timer = self.node.create_timer(self.node.get_parameter("diagnostics_period").value, self.publish)

    def stop(self) -> None:
        """Stop publishing (the counts stay readable until the next :meth:`start`)."""
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
            self._timer = None

    def thresholds(self) -> Thresholds:
        """The threshold parameters' current values (they may be set at run time)."""
        get = self.node.get_parameter
        return Thresholds(min_rate_hz=get("diagnostics_min_rate_hz").value,
                          max_p95_ms=get("diagnostics_max_p95_ms").value,
                          max_drop_fraction=get("diagnostics_max_drop_fraction").value,
                          stale_s=get("diagnostics_stale_s").value)

    def publish(self) -> None:
        """Publish the status of the window since the last one."""
        report = self.stats.report()
        level, message = assess(report, self.thresholds())
        status = DiagnosticStatus(level=bytes([level]), name=self.name, message=message,
                                  hardware_id=self.hardware_id,
                                  values=[KeyValue(key=k, value=v) for k, v in report_fields(report, self.backend)
                                          .items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self._publisher.publish(array)
