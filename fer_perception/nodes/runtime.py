"""Starting and stopping nodes: one node per process, or several in one executor.

The stand-alone executables (``ros2 run fer_perception camera_node``) and the
in-process runner share this, so a node behaves the same either way: the DDS
profile is applied, Ctrl-C (or a node's ``stop_requested``: the monitor's
window closed) stops it cleanly, and ``destroy_node`` always runs so that
every node can close its files and open episodes. A lifecycle node's
executable configures and activates it (:func:`bring_up`) unless its
``autostart`` parameter is false, and ends when the node is shut down
(``ros2 lifecycle set /camera shutdown``). A node that cannot start logs one
error line saying why, and its executable exits with 1.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable

import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from fer_perception.dds import apply_dds_profile
from fer_perception.graph import AUTOSTART
from fer_perception.native_log_filter import filter_native_logs

SHUTDOWN_DELIVERY_S = 0.1
START_ERRORS = (RuntimeError, OSError, ValueError, KeyError, yaml.YAMLError)
"""What a node raises when it cannot start (its constructor, or a lifecycle node's configure or activate step): a
missing or corrupt model (ModelLoadError and AUCheckpointError are RuntimeErrors), an unreadable or invalid
configuration file, an unwritable folder, a camera source that cannot be opened."""
STOP_REQUESTED = threading.Event()
"""Set by the SIGINT/SIGTERM handler of :func:`interrupt_on_stop_signals`."""


class NodeStartError(RuntimeError):
    """A node could not start; it has logged one line saying why (instead of a traceback), and the executables
    then exit with 1. The message names the node and the reason."""


def start_failure(error: BaseException) -> str:
    """The reason in a start error's one line: the message of the errors that name their file or model, the
    type too for the others (a KeyError's message alone is just the key)."""
    return str(error) if isinstance(error, (RuntimeError, OSError)) else f"{type(error).__name__}: {error}"


def lifecycle_state(node: LifecycleNode) -> str:
    """The label of a lifecycle node's current state ("unconfigured", "inactive", "active", "finalized", ...);
    rclpy has no public getter for it (rclcpp's get_current_state)."""
    return node._state_machine.current_state[1]


def bring_up(node: LifecycleNode) -> None:
    """Configure and activate ``node`` as a lifecycle manager would; :class:`NodeStartError` if a transition
    fails (the node has logged why)."""
    for transition in (node.trigger_configure, node.trigger_activate):
        if transition() != TransitionCallbackReturn.SUCCESS:
            reason = getattr(node, "failure", None) or f"{transition.__name__} failed in state {lifecycle_state(node)}"
            raise NodeStartError(f"{node.get_name()}: cannot start: {reason}")


class NodeGroup:
    """Nodes spun together by one executor in their own ROS context.

    The executor is single-threaded on purpose: nodes with heavy work run it on
    worker threads of their own, and callbacks only hand data over. With
    rclpy's MultiThreadedExecutor the executor's own Python overhead starved
    those workers of the GIL: on the demo clip the face node processed 26-36
    of 72 frames, against 72 of 72 with this executor.
    """

    def __init__(self, args: list[str] | None = None):
        apply_dds_profile()
        self.context = Context()
        # rclpy's own handler would end the context before the nodes are destroyed, and a
        # node closing its open episodes on shutdown must still be able to publish.
        rclpy.init(args=args, context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes: list[Node] = []

    def add(self, node_class: type[Node], **kwargs) -> Node:
        """Construct a node in this group (a lifecycle node stays unconfigured); nodes added later are destroyed
        earlier. A node that cannot be constructed logs why and raises :class:`NodeStartError`."""
        try:
            node = node_class(context=self.context, **kwargs)
        except START_ERRORS as error:
            name = kwargs.get("node_name") or node_class.__name__
            message = f"cannot start: {start_failure(error)}"
            rclpy.logging.get_logger(name).error(message)
            raise NodeStartError(f"{name}: {message}") from error
        self.nodes.insert(0, node)
        self.executor.add_node(node)
        return node

    def sources_finished(self) -> bool:
        """Whether every node that can finish (a camera on a file) has finished."""
        events = [n.finished for n in self.nodes if hasattr(n, "finished")]
        return bool(events) and all(e.is_set() for e in events)

    def failures(self) -> list[str]:
        """Why nodes could not start or sources could not be played (a missing file, a file removed while
        looping); empty when none."""
        return [n.failure for n in self.nodes if getattr(n, "failure", None)]

    def stop_requested(self) -> bool:
        """Whether a node asked to end the run, as Ctrl-C would (its ``stop_requested`` event: the monitor's
        window was closed)."""
        return any(n.stop_requested.is_set() for n in self.nodes if hasattr(n, "stop_requested"))

    def spin_until(self, done: Callable[[], bool]) -> None:
        """Spin until ``done()`` is true, a node asks to stop (:meth:`stop_requested`) or the context is shut
        down (Ctrl-C)."""
        try:
            while self.context.ok() and not done() and not self.stop_requested():
                self.executor.spin_once(timeout_sec=0.05)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except RuntimeError:
            # A Ctrl-C that lands while rclpy's C++ code converts a Python argument (taking a message)
            # surfaces as pybind11's RuntimeError instead of KeyboardInterrupt.
            if not STOP_REQUESTED.is_set():
                raise

    def spin_in_thread(self) -> threading.Thread:
        """Spin on a background thread until :meth:`shutdown` (for tests and embedding)."""
        self._stop_spinning = threading.Event()
        thread = threading.Thread(target=self.spin_until, args=(self._stop_spinning.is_set,),
                                  name="fer_executor", daemon=True)
        thread.start()
        self._spin_thread = thread
        return thread

    def shutdown(self) -> None:
        """Destroy the nodes, the last added first (sources first), and end the context."""
        if getattr(self, "_spin_thread", None) is not None:
            self._stop_spinning.set()
            self._spin_thread.join(timeout=10.0)
        for node in self.nodes:
            self.executor.remove_node(node)
            node.destroy_node()
            # What a node publishes as it goes (closing events) still reaches the nodes after it.
            deadline = time.monotonic() + SHUTDOWN_DELIVERY_S
            while self.context.ok() and time.monotonic() < deadline:
                self.executor.spin_once(timeout_sec=0.02)
        self.nodes.clear()
        self.executor.shutdown()
        self.context.try_shutdown()


def interrupt_on_stop_signals() -> None:
    """Make SIGINT and SIGTERM (sent by ros2 launch after SIGINT) stop the main loop, and record that they did
    (:data:`STOP_REQUESTED`)."""
    def raise_interrupt(signum, frame):
        STOP_REQUESTED.set()
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a process started with Ctrl-C ignored keeps it so
        signal.signal(signal.SIGINT, raise_interrupt)
    signal.signal(signal.SIGTERM, raise_interrupt)


def run_single_node(node_class: type[Node], args: list[str] | None = None,
                    parameter_overrides: list[Parameter] | None = None) -> None:
    """Run one node until Ctrl-C or, for a node that finishes (a camera on a file, a replay) or a lifecycle node
    that is shut down, until it does. A lifecycle node is brought up first unless its ``autostart`` is false."""
    filter_native_logs()
    interrupt_on_stop_signals()
    group = NodeGroup(args)
    try:
        node = group.add(node_class, parameter_overrides=parameter_overrides or [])
        managed = isinstance(node, LifecycleNode)
        if managed and node.get_parameter(AUTOSTART).value:
            bring_up(node)
        group.spin_until(lambda: getattr(node, "finished", threading.Event()).is_set()
                         or (managed and lifecycle_state(node) == "finalized"))
        failures = group.failures()
    except NodeStartError as error:
        failures = [str(error)]
    finally:
        group.shutdown()
    if failures:
        sys.exit(1)


def node_main(node_class: type[Node]) -> Callable[[list[str] | None], None]:
    """The console-script entry point of ``node_class``; the runner finds the class on it. A source that could
    not be played (``failure``) makes the executable exit with 1."""
    def main(args: list[str] | None = None) -> None:
        run_single_node(node_class, args)

    main.node_class = node_class
    return main
