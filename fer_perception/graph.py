"""The perception graph's description (``config/graph.yaml``), read once for every way of starting it.

``ros2 launch fer_perception fer.launch.py`` turns each :class:`NodeSpec` into
a ``launch_ros`` ``Node`` (a ``LifecycleNode`` for the lifecycle nodes) with
:meth:`NodeSpec.launch_kwargs`; ``fer-run`` constructs the same node classes in
one process with :meth:`NodeSpec.cli_args` and :attr:`NodeSpec.overrides`, and
both bring the lifecycle nodes to active in :func:`activation_order` (unless
``lifecycle:=manual``). Neither adds nodes, parameters or remappings of its
own, so both start the same graph.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fer_perception.paths import PACKAGE, config_path

GRAPH_FILE = "graph.yaml"
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
LIFECYCLE_ARGUMENT = "lifecycle"
"""The graph argument saying who brings the lifecycle nodes up: ``auto`` (fer-run, the launch file) or ``manual``."""
AUTOSTART = "autostart"
"""The parameter with which a lifecycle node's executable configures and activates itself when run alone."""

OverrideValue = str | bool


@dataclass(frozen=True)
class Argument:
    """A launch argument of the graph; a ``bool`` one takes the words of :data:`TRUE_WORDS` and
    :data:`FALSE_WORDS` (or nothing, where empty means "the parameter file's value")."""

    name: str
    default: str
    description: str
    type: str = "string"
    choices: tuple[str, ...] = ()

    def problem(self, value: str) -> str | None:
        """Why ``value`` is not acceptable for this argument, or ``None``."""
        if self.choices and value not in self.choices:
            return f"graph argument {self.name}:={value!r} is not one of {', '.join(self.choices)}"
        if self.type == "bool" and value.strip().lower() not in (*TRUE_WORDS, *FALSE_WORDS, ""):
            return f"graph argument {self.name}:={value!r} is not true or false"
        return None


@dataclass(frozen=True)
class NodeSpec:
    """One node of the resolved graph: what to start, with which parameters and topic names, and whether it is a
    lifecycle node (``managed``) that fer-run and the launch file bring to active (``activate``) once the nodes of
    ``activate_after`` are active."""

    name: str
    executable: str
    parameter_files: tuple[Path, ...]
    overrides: dict[str, OverrideValue] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    managed: bool = False
    activate: bool = False
    activate_after: tuple[str, ...] = ()

    def cli_args(self) -> list[str]:
        """ROS arguments for a node constructed in-process (``Node(cli_args=...)``)."""
        args = ["--ros-args"]
        for path in self.parameter_files:
            args += ["--params-file", str(path)]
        for source, target in self.remappings:
            args += ["-r", f"{source}:={target}"]
        return args

    def process_args(self) -> list[str]:
        """ROS arguments of the node's executable run on its own (``ros2 run``, ``python -m``): the same
        parameter files, overrides and remappings, and the node's name. A lifecycle node then brings itself up
        (its ``autostart`` parameter)."""
        args = [*self.cli_args(), "-r", f"__node:={self.name}"]
        for name, value in self.overrides.items():
            args += ["-p", f"{name}:={json.dumps(value)}"]  # JSON is YAML, which ROS reads the value as
        return args

    def launch_kwargs(self) -> dict:
        """Keyword arguments of ``launch_ros.actions.Node`` (or ``LifecycleNode``) for the same node. A lifecycle
        node does not bring itself up there: the launch file's lifecycle events (or your manager) do."""
        parameters: list[str | dict] = [str(p) for p in self.parameter_files]
        parameters += [dict(self.overrides)] if self.overrides else []
        parameters += [{AUTOSTART: False}] if self.managed else []
        return {
            "package": PACKAGE,
            "executable": self.executable,
            "name": self.name,
            "namespace": "",  # the launch's namespace (PushRosNamespace), or the root; LifecycleNode requires one
            "parameters": parameters,
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
        problems = [problem for name, value in resolved.items() if (problem := self.arguments[name].problem(value))]
        if problems:
            raise ValueError("; ".join(problems))
        enabled = [node for node in self.nodes
                   if node.get("when") is None or resolved[node["when"]].strip().lower() in TRUE_WORDS]
        names = {node["name"] for node in enabled}
        specs = []
        for node in enabled:
            managed = bool(node.get("managed", False))
            specs.append(NodeSpec(
                name=node["name"],
                executable=node["executable"],
                parameter_files=tuple(config_path(f) for f in node.get("parameters", [])),
                overrides={k: value for k, v in node.get("overrides", {}).items()
                           if (value := self._override(v, resolved)) not in ("", None)},
                remappings=tuple((k, str(v).format(**resolved)) for k, v in node.get("remappings", {}).items()),
                managed=managed,
                activate=managed and resolved.get(LIFECYCLE_ARGUMENT, "auto") == "auto",
                activate_after=tuple(n for n in node.get("activate_after", []) if n in names),
            ))
        return specs

    def _override(self, template: object, resolved: dict[str, str]) -> OverrideValue | None:
        """A parameter value from ``template``: a YAML list as a comma-separated string (as the nodes take
        lists), a string with ``{argument}``s filled in, a bool where the string is just a ``bool`` argument
        (``None`` when that argument is left empty)."""
        if isinstance(template, list):
            return ",".join(str(item) for item in template)
        text = str(template)
        argument = self.arguments.get(text[1:-1]) if text.startswith("{") and text.endswith("}") else None
        if argument is not None and argument.type == "bool":
            word = resolved[argument.name].strip().lower()
            return None if not word else word in TRUE_WORDS
        return text.format(**resolved)


def activation_order(specs: Sequence[NodeSpec]) -> list[NodeSpec]:
    """The nodes of ``specs`` to bring to active, each after the nodes it is activated after."""
    pending = {spec.name: spec for spec in specs if spec.activate}
    order: list[NodeSpec] = []
    while pending:
        ready = [spec for spec in pending.values() if not set(spec.activate_after) & pending.keys()]
        if not ready:
            raise ValueError(f"activate_after forms a cycle among {sorted(pending)}")
        order += ready
        for spec in ready:
            del pending[spec.name]
    return order


def graph_topics(node: str = "expression") -> dict[str, str]:
    """The graph's topic for each relative topic name of ``node`` (default arguments), e.g. image, expressions."""
    spec = next(s for s in load_graph().resolve() if s.name == node)
    return dict(spec.remappings)


def load_graph(path: Path | None = None) -> GraphDescription:
    """Read the graph description (``config/graph.yaml`` by default)."""
    data = yaml.safe_load((path or config_path(GRAPH_FILE)).read_text())
    arguments = {
        name: Argument(name, str(spec["default"]), spec.get("description", ""), spec.get("type", "string"),
                       tuple(spec.get("choices", ())))
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
