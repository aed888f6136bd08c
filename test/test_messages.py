"""fer_msgs builds, and every message round-trips over DDS: between two nodes, and between two processes."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import fer_msgs.msg
from rclpy.executors import SingleThreadedExecutor

from fer_perception.nodes.messages import expression_msg, face_expression
from fer_perception.nodes.qos import reliable
from ros_helpers import filled, wait_until

MESSAGE_TYPES = ["BoundingBox", "Face", "Faces", "FaceCrop", "FaceCrops", "Expression", "Expressions",
                 "Event", "Events"]


def test_constants_describe_the_arrays():
    expression = fer_msgs.msg.Expression()
    au_numbers = [int(n) for n in fer_msgs.msg.Expression.AU_NUMBERS.split(",")]
    labels = fer_msgs.msg.Expression.EMOTION_LABELS.split(",")
    assert au_numbers == [1, 2, 4, 5, 6, 9, 10, 12, 14, 15, 17, 20, 25, 26, 43]
    assert len(expression.au_intensity) == len(au_numbers) == fer_msgs.msg.Expression.AU_COUNT
    assert len(expression.emotion_probabilities) == len(labels) == fer_msgs.msg.Expression.EMOTION_COUNT
    assert labels[fer_msgs.msg.Expression.HAPPY] == "happy"
    assert au_numbers[fer_msgs.msg.Expression.AU12] == 12 and au_numbers[fer_msgs.msg.Expression.AU43] == 43


def test_au_calibration_converts_both_ways():
    msg = fer_msgs.msg.Expression(face_id="f0", au_calibration=0.625)
    msg.au_estimated[fer_msgs.msg.Expression.AU12] = True
    expression = face_expression(msg)
    assert expression.aus.calibration == 0.625
    assert expression_msg(expression) == msg


def _spin_exchange(context, publish_topic: str, receive_topic: str, publish_node_count: int = 1):
    """Publish one filled message of each type and collect what arrives on the receive topics."""
    import rclpy

    sender = rclpy.create_node("fer_test_sender", context=context)
    receiver = sender if publish_node_count == 1 else rclpy.create_node("fer_test_receiver", context=context)
    executor = SingleThreadedExecutor(context=context)
    for node in {sender, receiver}:
        executor.add_node(node)
    received: dict[str, object] = {}
    publishers = {}
    for name in MESSAGE_TYPES:
        msg_class = getattr(fer_msgs.msg, name)
        publishers[name] = sender.create_publisher(msg_class, f"{publish_topic}/{name}", reliable(10))
        receiver.create_subscription(msg_class, f"{receive_topic}/{name}",
                                     lambda msg, name=name: received.setdefault(name, msg), reliable(10))
    return sender, receiver, executor, publishers, received


def _exchange(context, publish_topic, receive_topic, two_nodes, matched):
    sender, receiver, executor, publishers, received = _spin_exchange(
        context, publish_topic, receive_topic, 2 if two_nodes else 1)
    sent = {name: filled(getattr(fer_msgs.msg, name), seed=i + 1) for i, name in enumerate(MESSAGE_TYPES)}
    try:
        assert wait_until(lambda: matched(publishers), 20.0, lambda: executor.spin_once(timeout_sec=0.05)), \
            "publishers never matched their subscribers"
        for name, msg in sent.items():
            publishers[name].publish(msg)
        wait_until(lambda: len(received) == len(sent), 20.0, lambda: executor.spin_once(timeout_sec=0.05))
    finally:
        executor.shutdown()
        for node in {sender, receiver}:
            node.destroy_node()
    return sent, received


def test_every_message_round_trips_between_two_nodes(ros_context):
    sent, received = _exchange(ros_context, "roundtrip", "roundtrip", True,
                               lambda pubs: all(p.get_subscription_count() for p in pubs.values()))
    assert sorted(received) == sorted(sent)
    for name in MESSAGE_TYPES:
        assert received[name] == sent[name], name


def test_every_message_round_trips_between_two_processes(ros_context):
    echo = subprocess.Popen([sys.executable, str(Path(__file__).with_name("echo_node.py")), *MESSAGE_TYPES])
    try:
        sent, received = _exchange(ros_context, "echo_in", "echo_out", False,
                                   lambda pubs: all(p.get_subscription_count() for p in pubs.values()))
    finally:
        echo.send_signal(signal.SIGINT)
        echo.wait(timeout=10)
    assert sorted(received) == sorted(sent), "not every message came back from the echo process"
    for name in MESSAGE_TYPES:
        assert received[name] == sent[name], name
