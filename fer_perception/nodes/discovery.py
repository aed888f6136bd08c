"""Holding the first message until the subscribers can receive it, so that none is lost to discovery.

DDS matching is asymmetric: a publisher counts a subscriber as soon as it has
matched it, which can be before that subscriber has matched the publisher, and
a best-effort subscriber drops every sample that arrives before then. Seen in
CI: a replay that waited for the count lost its first 3 of 24 frames. So after
every publisher counts a subscriber, the wait goes on for ``settle_s`` more.

A subscriber count says nothing about *which* node subscribed: a monitor or a
recorder would release the wait before the perception is up (a file played
under ``ros2 launch`` reached no face node in five runs of six). The wait can
therefore also require named lifecycle nodes to be active (:class:`ActiveNodes`),
which they are once they have loaded their models and subscribed.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.task import Future

from fer_perception.nodes.parameters import Param

POLL_S = 0.01
ASK_INTERVAL_S = 0.1  # between two get_state requests to the same node

SUBSCRIBER_SETTLE_PARAM = Param(
    "subscriber_settle", 0.5, "Seconds to wait after the subscribers appear, before the first message, so that "
    "they finish discovering this publisher too (only with wait_for_subscribers).", min=0.0, max=10.0,
    read_only=True)


class ActiveNodes:
    """Asks lifecycle nodes for their state (``<name>/get_state``, names resolved like topic names) until each has
    answered "active". Create and destroy it where the node's entities are created (not on a worker thread)."""

    def __init__(self, node: Node, names: Sequence[str]):
        self._node = node
        self._clients = {name: node.create_client(GetState, f"{name}/get_state") for name in names}
        self._waiting = list(names)
        self._answers: dict[str, Future] = {}
        self._next_ask = dict.fromkeys(names, 0.0)

    def waiting(self) -> list[str]:
        """The nodes not seen active yet; asks those whose last answer is in again (never blocks)."""
        now = time.monotonic()
        for name in list(self._waiting):
            answer = self._answers.get(name)
            if answer is not None and answer.done():
                del self._answers[name]
                if answer.result() is not None and answer.result().current_state.id == State.PRIMARY_STATE_ACTIVE:
                    self._waiting.remove(name)
                    continue
            if name not in self._answers and now >= self._next_ask[name] and self._clients[name].service_is_ready():
                self._answers[name] = self._clients[name].call_async(GetState.Request())
                self._next_ask[name] = now + ASK_INTERVAL_S
        return list(self._waiting)

    def destroy(self) -> None:
        for client in self._clients.values():
            self._node.destroy_client(client)


def wait_for_subscribers(publishers: Sequence[Publisher], settle_s: float, stop: threading.Event,
                         log: Callable[[str], None], *, nodes: ActiveNodes | None = None,
                         timeout_s: float = math.inf, warn: Callable[[str], None] | None = None) -> bool:
    """Block until each of ``publishers`` has a subscriber and each of ``nodes`` is active, then ``settle_s``
    more; False if ``stop`` was set. After ``timeout_s`` the wait gives up, ``warn`` says on what, and the
    settle time follows as usual."""
    deadline = time.monotonic() + timeout_s

    def missing() -> list[str]:
        parts = []
        if nodes is not None and (inactive := nodes.waiting()):
            parts.append(f"{', '.join(inactive)} to be active")
        if topics := [p.topic_name for p in publishers if p.get_subscription_count() == 0]:
            parts.append(f"subscribers on {', '.join(topics)}")
        return parts

    waiting = missing()
    if waiting:
        log(f"waiting for {' and for '.join(waiting)}")
    while waiting and not stop.wait(POLL_S):
        waiting = missing()
        if waiting and time.monotonic() > deadline:
            (warn or log)(f"still waiting for {' and for '.join(waiting)} after {timeout_s:g} s: going on anyway")
            break
    return not stop.wait(settle_s)
