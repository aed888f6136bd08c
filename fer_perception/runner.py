"""fer-run: the whole perception graph in one process, where ``ros2 launch`` is not available.

It reads the same description as ``launch/fer.launch.py`` (``config/graph.yaml``),
constructs the same node classes with the same parameter files and
remappings, brings the lifecycle nodes to active in the same order (the
camera last; none with ``lifecycle:=manual``), and spins them in one
executor (see ``NodeGroup`` for why it is single-threaded). Arguments use the
launch syntax: ``fer-run source:=clip.mp4 monitor:=true``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time

from rclpy.node import Node
from rclpy.parameter import Parameter

from fer_perception.graph import NodeSpec, activation_order, load_graph, parse_assignments
from fer_perception.native_log_filter import filter_native_logs
from fer_perception.nodes.runtime import NodeGroup, NodeStartError, bring_up, interrupt_on_stop_signals


def node_class(executable: str) -> type[Node]:
    """The node class behind a console-script name of this package."""
    return importlib.import_module(f"fer_perception.nodes.{executable}").main.node_class


def start_graph(specs: list[NodeSpec]) -> NodeGroup:
    """Construct every node of ``specs`` in one :class:`NodeGroup` and bring the lifecycle nodes to active.

    Nodes are constructed from the last to the first and activated in
    :func:`activation_order`, so that consumers have loaded their models and
    subscribed before the camera's first frame; they are destroyed from the
    first to the last, so the camera stops first. A node that cannot start
    raises :class:`NodeStartError` (it has logged why).
    """
    # Not the command line: rcl would read the graph arguments (name:=value) as deprecated remap rules.
    group = NodeGroup(args=[])
    try:
        nodes = {spec.name: group.add(node_class(spec.executable), node_name=spec.name, cli_args=spec.cli_args(),
                                      use_global_arguments=False,
                                      parameter_overrides=[Parameter(k, value=v) for k, v in spec.overrides.items()])
                 for spec in reversed(specs)}
        for spec in activation_order(specs):
            bring_up(nodes[spec.name])
    except BaseException:
        group.shutdown()
        raise
    return group


def main(argv: list[str] | None = None) -> None:
    graph = load_graph()
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="graph arguments (name:=value): " + "; ".join(
            f"{a.name} (default {a.default!r}): {a.description}" for a in graph.arguments.values()))
    parser.add_argument("assignments", nargs="*", metavar="name:=value")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (0: until Ctrl-C or the end of the source)")
    parser.add_argument("--drain", type=float, default=1.0,
                        help="seconds to keep running after a file source ends, for the last frames")
    parser.add_argument("--verbose", action="store_true",
                        help="also show MediaPipe's and TensorFlow Lite's start-up logs (or set FER_VERBOSE=1)")
    options = parser.parse_args(argv)
    filter_native_logs(options.verbose)
    try:
        specs = graph.resolve(parse_assignments(options.assignments))
    except ValueError as error:
        parser.error(str(error))
    interrupt_on_stop_signals()
    try:
        group = start_graph(specs)
    except KeyboardInterrupt:
        print("interrupted while the graph was starting; stopped", flush=True)
        return
    except NodeStartError:
        sys.exit(1)  # the node has logged why
    deadline = time.monotonic() + options.duration if options.duration > 0 else float("inf")
    try:
        group.spin_until(lambda: group.sources_finished() or time.monotonic() > deadline)
        if group.sources_finished():
            drain_end = time.monotonic() + options.drain
            group.spin_until(lambda: time.monotonic() > drain_end)
        failures = group.failures()
    finally:
        group.shutdown()
    if failures:
        sys.exit(1)  # the failing node has logged why


if __name__ == "__main__":
    main()
