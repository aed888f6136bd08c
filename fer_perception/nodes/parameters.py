"""Declaring node parameters with descriptions, ranges and choices, and refusing bad values.

A bad value given at start-up is logged with the reason and replaced by the
default, so the node still starts; a bad value set at run time is refused
with the reason (``ros2 param set`` shows it).
"""
from __future__ import annotations

from dataclasses import dataclass

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

ParamValue = bool | int | float | str


@dataclass(frozen=True)
class Param:
    """One declared parameter: default, meaning, and the values it accepts."""

    name: str
    default: ParamValue
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False

    def descriptor(self) -> ParameterDescriptor:
        text = self.description + (f" One of: {', '.join(self.choices)}." if self.choices else "")
        descriptor = ParameterDescriptor(description=text, read_only=self.read_only)
        if self.min is not None and self.max is not None:
            if isinstance(self.default, float):
                descriptor.floating_point_range = [FloatingPointRange(from_value=float(self.min),
                                                                      to_value=float(self.max))]
            elif isinstance(self.default, int) and not isinstance(self.default, bool):
                descriptor.integer_range = [IntegerRange(from_value=int(self.min), to_value=int(self.max))]
        return descriptor

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable, or ``None``."""
        if self.choices and value not in self.choices:
            return f"{self.name}={value!r} is not one of {list(self.choices)}"
        if self.min is not None and isinstance(value, (int, float)) and not self.min <= value <= self.max:
            return f"{self.name}={value!r} is outside [{self.min}, {self.max}]"
        return None


def declare_parameters(node: Node, params: list[Param]) -> dict[str, ParamValue]:
    """Declare ``params`` on ``node`` and return their values, falling back to defaults on bad ones."""
    by_name = {p.name: p for p in params}

    def refuse_bad(changes: list[Parameter]) -> SetParametersResult:
        for change in changes:
            spec = by_name.get(change.name)
            reason = spec.problem(change.value) if spec else None
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(refuse_bad)
    values = {}
    for p in params:
        try:
            parameter = node.declare_parameter(p.name, p.default, p.descriptor())
        except (InvalidParameterValueException, InvalidParameterTypeException, TypeError) as error:
            node.get_logger().error(f"parameter {p.name}: {error}; using the default {p.default!r}")
            parameter = node.declare_parameter(p.name, p.default, p.descriptor(), ignore_override=True)
        values[p.name] = parameter.value
    return values
