"""What the lifecycle (managed) nodes of the perception share: the camera, face-detection and expression nodes.

A robot's lifecycle manager (nav2's ``lifecycle_manager``, launch's lifecycle
events, ``ros2 lifecycle set``, fer-run) brings nodes up in an order of its
choosing and pauses them without restarting processes. The nodes follow the
layout of the best ROS 2 perception packages: parameters are declared in
``__init__``; ``on_configure`` reads and checks them and creates the lifecycle
publishers; ``on_activate`` loads models and creates subscriptions, timers and
worker threads; ``on_deactivate`` stops processing and releases them;
``on_cleanup`` removes the publishers; shutting down (``on_shutdown``, also run
by ``destroy_node``) releases whatever the node still holds. A configure or
activate step that cannot be made logs one line saying why and returns
FAILURE (rclpy would turn the exception into ERROR without a word), and the
node stays where it was.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from fer_perception.graph import AUTOSTART
from fer_perception.nodes.parameters import Param, declare_parameters
from fer_perception.nodes.runtime import START_ERRORS, lifecycle_state, start_failure

AUTOSTART_PARAM = Param(AUTOSTART, True, "Configure and activate the node at start when its executable runs on its "
                        "own; false leaves it unconfigured for a lifecycle manager. fer-run and the launch file "
                        "bring the graph's nodes up themselves (graph argument lifecycle).", read_only=True)

TransitionCallback = Callable[["ManagedNode", LifecycleState], TransitionCallbackReturn]


def reports_start_errors(step: TransitionCallback) -> TransitionCallback:
    """Make a configure or activate callback that raises what a node raises when it cannot start
    (:data:`START_ERRORS`) log one error line and return FAILURE; the reason is kept in ``failure``."""
    @functools.wraps(step)
    def guarded(node: ManagedNode, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return step(node, state)
        except START_ERRORS as error:
            node.failure = start_failure(error)
            node.get_logger().error(f"cannot start: {node.failure}")
            return TransitionCallbackReturn.FAILURE
    return guarded


class ManagedNode(LifecycleNode):
    """A lifecycle node that declares ``params`` (and ``autostart``) and releases everything when shut down or
    destroyed in any state."""

    def __init__(self, node_name: str, params: list[Param], **kwargs):
        super().__init__(node_name, **kwargs)
        self.failure: str | None = None  # why the node could not start (or its source be played); exit status 1
        declare_parameters(self, [*params, AUTOSTART_PARAM])

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Shutting down from ``state`` (the state left) deactivates and cleans up as far as needed."""
        if state.label == "active":
            self.on_deactivate(state)
        if state.label in ("active", "inactive"):
            self.on_cleanup(state)
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        if lifecycle_state(self) in ("unconfigured", "inactive", "active"):
            self.trigger_shutdown()
        super().destroy_node()
        # rclpy's LifecycleNode leaves its state machine, and with it the rcl node and the DDS participant's
        # threads, alive until garbage collection.
        self._state_machine.destroy_when_not_in_use()
