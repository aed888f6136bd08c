"""QoS profiles of the graph, as REP-2003 asks, and the overrides users may set without editing code.

Cameras are read with sensor-data QoS (best effort, keep last); images (the
camera node, fer-replay) and derived results are published reliably with an
explicit depth, so that sensor-data and reliable subscribers both match.
Every publisher and subscription of the perception nodes accepts the standard
``qos_overrides.<topic>.<publisher|subscription>.<policy>`` parameters
(history, depth, reliability, durability; read-only, so set them at start in
a parameter file or with ``-p``), the profiles here being their defaults.
"""
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions

QOS_OVERRIDES = QoSOverridingOptions.with_default_policies()
"""Pass as ``qos_overriding_options`` to every ``create_publisher``/``create_subscription``."""

SENSOR_QOS: QoSProfile = qos_profile_sensor_data

# The face detector always works on the newest frame: a queue would only add latency.
NEWEST_FRAME_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                              reliability=ReliabilityPolicy.BEST_EFFORT)


def reliable(depth: int) -> QoSProfile:
    """Reliable, keep-last ``depth``: for images, faces, expressions and events."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)


IMAGE_PUBLISHER_QOS = reliable(5)
"""How the camera node and fer-replay publish images (a best-effort subscriber receives them best effort)."""
