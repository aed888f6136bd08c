"""What a parameter accepts, written once for the ROS nodes and the offline tools alike.

A node declares each :class:`Param` with a descriptor (``fer_perception.nodes.parameters``);
``fer-analyze`` reads the same YAML files without ROS and checks their values
with :func:`checked_values`, so both refuse the same values for the same
reasons and fall back to the same defaults.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

ParamValue = bool | int | float | str


@dataclass(frozen=True)
class Param:
    """One parameter: default, meaning, and the values it accepts."""

    name: str
    default: ParamValue | None
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False
    value_type: type | None = None
    """The type of the value where ``default`` is None: an optional parameter, unset unless given, for a choice
    that overrides a configuration file only when made (a bool has no "empty" value to mean "the file's")."""

    @property
    def type(self) -> type:
        return self.value_type or type(self.default)

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable, or ``None``."""
        if self.choices and value not in self.choices:
            return f"{self.name}={value!r} is not one of {list(self.choices)}"
        if self.min is not None and isinstance(value, (int, float)) and not self.min <= value <= self.max:
            return f"{self.name}={value!r} is outside [{self.min}, {self.max}]"
        return None

    def type_problem(self, value: object) -> str | None:
        """Why ``value`` has the wrong type for this parameter (an int where a float is expected is fine)."""
        expected = self.type
        if value is None and self.default is None:
            return None
        if isinstance(value, bool) != (expected is bool):
            return f"{self.name}={value!r} is not a {expected.__name__}"
        if expected is float and isinstance(value, (int, float)):
            return None
        if not isinstance(value, expected):
            return f"{self.name}={value!r} is not a {expected.__name__}"
        return None


def checked_values(params: Iterable[Param], values: Mapping[str, object],
                   warn: Callable[[str], None]) -> dict[str, ParamValue]:
    """The value of each of ``params`` from ``values`` (a parameter file's), its default where the value is
    missing, of the wrong type or out of range (``warn`` is told why, as the nodes log it)."""
    checked = {}
    for param in params:
        value = values.get(param.name, param.default)
        reason = param.type_problem(value) or param.problem(value)
        if reason:
            warn(f"parameter {reason}; using the default {param.default!r}")
            value = param.default
        checked[param.name] = float(value) if isinstance(param.default, float) else value
    return checked
