"""Waiting for subscribers over real DDS: the first best-effort message reaches a fresh subscriber."""
from __future__ import annotations

import threading
import time

from sensor_msgs.msg import Image

from fer_perception.nodes.discovery import wait_for_subscribers
from fer_perception.nodes.qos import IMAGE_PUBLISHER_QOS, SENSOR_QOS
from ros_helpers import Client, wait_until

TOPIC = "/fer_test/discovery/image"


def test_the_first_message_after_the_wait_reaches_a_subscriber_that_just_appeared(ros_context):
    publisher_side = Client(ros_context, "fer_test_discovery_publisher")
    subscriber_side = Client(ros_context, "fer_test_discovery_subscriber")
    received: list[Image] = []
    try:
        publisher = publisher_side.node.create_publisher(Image, TOPIC, IMAGE_PUBLISHER_QOS)
        subscriber_side.node.create_subscription(Image, TOPIC, received.append, SENSOR_QOS)
        lines: list[str] = []
        began = time.monotonic()
        assert wait_for_subscribers([publisher], 0.3, threading.Event(), lines.append)
        assert time.monotonic() - began >= 0.3
        publisher.publish(Image(height=1, width=1, encoding="mono8", step=1, data=b"\x07"))
        assert wait_until(lambda: received, 5.0, subscriber_side.spin), "the first message was lost"
        assert bytes(received[0].data) == b"\x07"
    finally:
        publisher_side.close()
        subscriber_side.close()


def test_a_stop_ends_the_wait_and_the_log_names_the_topic(ros_context):
    client = Client(ros_context, "fer_test_discovery_lonely")
    try:
        publisher = client.node.create_publisher(Image, "/fer_test/discovery/nobody", IMAGE_PUBLISHER_QOS)
        stop = threading.Event()
        threading.Timer(0.2, stop.set).start()
        lines: list[str] = []
        assert not wait_for_subscribers([publisher], 0.0, stop, lines.append)
        assert stop.is_set() and lines == ["waiting for subscribers on /fer_test/discovery/nobody"]
    finally:
        client.close()
