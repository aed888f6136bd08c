"""The test session's DDS scope (set in conftest): a graph in another domain on this machine is not seen, one that
the tests start is."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import rclpy
from rclpy.context import Context
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from conftest import OUTSIDE_DOMAIN_ID, TEST_DOMAIN_IDS
from ros_helpers import Client, wait_until

TOPIC = "/fer_test/isolation/chatter"
# A node publishing its name on TOPIC ten times a second, in the domain and discovery range of its environment.
TALKER = """
import sys, rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node(sys.argv[1])
publisher = node.create_publisher(String, sys.argv[2], 10)
node.create_timer(0.1, lambda: publisher.publish(String(data=sys.argv[1])))
print("publishing", flush=True)
rclpy.spin(node)
"""


@contextmanager
def talker(name: str, environment: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A talker process, running once it has created its publisher; stopped afterwards."""
    process = subprocess.Popen([sys.executable, "-c", TALKER, name, TOPIC], env=environment, stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout.readline().strip() == "publishing", f"talker {name} did not start"
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def received_names(context: Context, node_name: str, seconds_after_first: float) -> tuple[set[str], Client]:
    """The talker names heard on TOPIC in ``context``: spin until one arrives, then ``seconds_after_first`` more."""
    client = Client(context, node_name)
    heard: set[str] = set()
    client.node.create_subscription(String, TOPIC, lambda message: heard.add(message.data), 10)
    assert wait_until(lambda: heard, 20.0, client.spin), f"nothing heard on {TOPIC} in domain " \
                                                          f"{context.get_domain_id()}"
    wait_until(lambda: False, seconds_after_first, client.spin)
    return heard, client


def test_the_session_runs_in_a_domain_of_its_own_limited_to_this_host(ros_context):
    assert ros_context.get_domain_id() == int(os.environ["ROS_DOMAIN_ID"]) in TEST_DOMAIN_IDS
    assert os.environ["ROS_DOMAIN_ID"] != OUTSIDE_DOMAIN_ID
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_a_graph_in_the_outside_domain_is_not_seen_and_one_the_tests_start_is(ros_context):
    # The outsider runs as a demo does: the domain the session was started in, the default discovery range.
    outside = {k: v for k, v in os.environ.items() if k != "ROS_AUTOMATIC_DISCOVERY_RANGE"}
    outside["ROS_DOMAIN_ID"] = OUTSIDE_DOMAIN_ID
    witness = Context()
    rclpy.init(context=witness, domain_id=int(OUTSIDE_DOMAIN_ID), signal_handler_options=SignalHandlerOptions.NO)
    try:
        with talker("fer_test_outsider", outside), talker("fer_test_insider", dict(os.environ)):
            heard_here, here = received_names(ros_context, "fer_test_isolation_listener", 2.0)
            heard_outside, there = received_names(witness, "fer_test_isolation_witness", 0.5)
            try:
                # The outsider is live and visible in its own domain ...
                assert heard_outside == {"fer_test_outsider"}
                # ... and neither heard nor discovered in the tests' domain, where the talker the test started is.
                assert heard_here == {"fer_test_insider"}
                assert here.node.count_publishers(TOPIC) == 1
                names = here.node.get_node_names()
                assert "fer_test_insider" in names and "fer_test_outsider" not in names
            finally:
                here.close()
                there.close()
    finally:
        witness.try_shutdown()
