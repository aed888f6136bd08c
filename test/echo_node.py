"""A separate process for tests: republishes every fer_msgs message it receives on '<topic>_echo'.

Usage: python echo_node.py TypeName [TypeName ...]; topics are 'echo_in/<TypeName>'.
"""
import sys

import fer_msgs.msg
import rclpy
from rclpy.executors import ExternalShutdownException

from fer_perception.dds import apply_dds_profile
from fer_perception.nodes.qos import reliable


def main() -> None:
    apply_dds_profile()
    rclpy.init()
    node = rclpy.create_node("fer_test_echo")
    for name in sys.argv[1:]:
        msg_class = getattr(fer_msgs.msg, name)
        publisher = node.create_publisher(msg_class, f"echo_out/{name}", reliable(10))
        node.create_subscription(msg_class, f"echo_in/{name}", publisher.publish, reliable(10))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
