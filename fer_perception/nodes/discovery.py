"""Holding the first message until the subscribers can receive it, so that none is lost to discovery.

DDS matching is asymmetric: a publisher counts a subscriber as soon as it has
matched it, which can be before that subscriber has matched the publisher, and
a best-effort subscriber drops every sample that arrives before then. Seen in
CI: a replay that waited for the count lost its first 3 of 24 frames. So after
every publisher counts a subscriber, the wait goes on for ``settle_s`` more.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from rclpy.publisher import Publisher

from fer_perception.nodes.parameters import Param

POLL_S = 0.01

SUBSCRIBER_SETTLE_PARAM = Param(
    "subscriber_settle", 0.5, "Seconds to wait after the subscribers appear, before the first message, so that "
    "they finish discovering this publisher too (only with wait_for_subscribers).", min=0.0, max=10.0,
    read_only=True)


def wait_for_subscribers(publishers: Sequence[Publisher], settle_s: float, stop: threading.Event,
                         log: Callable[[str], None]) -> bool:
    """Block until each of ``publishers`` has a subscriber, then ``settle_s`` more; False if ``stop`` was set."""
    waiting = [p for p in publishers if p.get_subscription_count() == 0]
    if waiting:
        log(f"waiting for subscribers on {', '.join(p.topic_name for p in waiting)}")
    while waiting and not stop.wait(POLL_S):
        waiting = [p for p in waiting if p.get_subscription_count() == 0]
    return not stop.wait(settle_s)
