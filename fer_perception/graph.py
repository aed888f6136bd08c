"""The perception graph's description (``config/graph.yaml``), read once for every way of starting it.

``ros2 launch fer_perception fer.launch.py`` turns each :class:`NodeSpec` into
a ``launch_ros`` ``Node`` with :meth:`NodeSpec.launch_kwargs`; ``fer-run``
constructs the same node classes in one process with :meth:`NodeSpec.cli_args`
and :attr:`NodeSpec.overrides`. Neither adds nodes, parameters or remappings
of its own, so both start the same graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fer_perception.paths import PACKAGE, config_path

GRAPH_FILE = "graph.yaml"
TRUE_WORDS = ("true", "1", "yes", "on")


@dataclass(frozen=True)
class Argument:
    """A launch argument of the graph."""

    name: str
    default: str
    description: str


@dataclass(frozen=True)
class NodeSpec:
    """One node of the resolved graph: what to start, with which parameters and topic names."""

    name: str
    executable: str
    parameter_files: tuple[Path, ...]
    overrides: dict[str, str] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()

    def cli_args(self) -> list[str]:
        """ROS arguments for a node constructed in-process (``Node(cli_args=...)``)."""
        args = ["--ros-args"]
        for path in self.parameter_files:
            args += ["--params-file", str(path)]
        for source, target in self.remappings:
            args += ["-r", f"{source}:={target}"]
        return args

    def launch_kwargs(self) -> dict:
        """Keyword arguments of ``launch_ros.actions.Node`` for the same node."""
        return {
            "package": PACKAGE,
            "executable": self.executable,
            "name": self.name,
            "parameters": [str(p) for p in self.parameter_files] + ([dict(self.overrides)] if self.overrides else []),
            "remappings": list(self.remappings),
            "output": "screen",
            "emulate_tty": True,
        }


@dataclass(frozen=True)
class GraphDescription:
    """The arguments and node templates of ``config/graph.yaml``."""

    arguments: dict[str, Argument]
    nodes: tuple[dict, ...]

    def resolve(self, values: dict[str, str] | None = None) -> list[NodeSpec]:
        """The nodes to start for these argument values (defaults for the rest)."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(self.arguments))
        if unknown:
            raise ValueError(f"unknown graph argument(s) {unknown}; known: {sorted(self.arguments)}")
        resolved = {name: values.get(name, arg.default) for name, arg in self.arguments.items()}
        specs = []
        for node in self.nodes:
            when = node.get("when")
            if when is not None and resolved[when].strip().lower() not in TRUE_WORDS:
                continue
            specs.append(NodeSpec(
                name=node["name"],
                executable=node["executable"],
                parameter_files=tuple(config_path(f) for f in node.get("parameters", [])),
                overrides={k: value for k, v in node.get("overrides", {}).items()
                           if (value := str(v).format(**resolved))},
                remappings=tuple((k, str(v).format(**resolved)) for k, v in node.get("remappings", {}).items()),
            ))
        return specs


def graph_topics(node: str = "expression") -> dict[str, str]:
    """The graph's topic for each relative topic name of ``node`` (default arguments), e.g. image, expressions."""
    spec = next(s for s in load_graph().resolve() if s.name == node)
    return dict(spec.remappings)


def load_graph(path: Path | None = None) -> GraphDescription:
    """Read the graph description (``config/graph.yaml`` by default)."""
    data = yaml.safe_load((path or config_path(GRAPH_FILE)).read_text())
    arguments = {
        name: Argument(name, str(spec["default"]), spec.get("description", ""))
        for name, spec in data.get("arguments", {}).items()
    }
    return GraphDescription(arguments, tuple(data["nodes"]))


def parse_assignments(words: list[str]) -> dict[str, str]:
    """``["source:=x.mp4", "monitor:=true"]`` → ``{"source": "x.mp4", "monitor": "true"}``."""
    values = {}
    for word in words:
        name, sep, value = word.partition(":=")
        if not sep or not name:
            raise ValueError(f"expected name:=value, got {word!r}")
        values[name] = value
    return values
