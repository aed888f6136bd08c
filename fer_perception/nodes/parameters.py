"""Declaring node parameters with descriptions, ranges and choices, and refusing bad values.

A bad value given at start-up is logged with the reason and replaced by the
default, so the node still starts; a bad value set at run time is refused
with the reason (``ros2 param set`` shows it). Lifecycle nodes declare their
parameters when constructed and read them (:func:`parameter_values`) when
configured. An optional parameter (a :class:`Param` without a default) is
declared with its type and no value, and reads as None until given one.
"""
from __future__ import annotations

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from fer_perception.parameter_spec import Param, ParamValue

ROS_TYPES = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER, float: Parameter.Type.DOUBLE,
             str: Parameter.Type.STRING}


def descriptor(param: Param) -> ParameterDescriptor:
    """The ROS descriptor of ``param``: its description, choices and numeric range."""
    text = param.description + (f" One of: {', '.join(param.choices)}." if param.choices else "")
    result = ParameterDescriptor(description=text, read_only=param.read_only)
    if param.min is not None and param.max is not None:
        if isinstance(param.default, float):
            result.floating_point_range = [FloatingPointRange(from_value=float(param.min),
                                                              to_value=float(param.max))]
        elif isinstance(param.default, int) and not isinstance(param.default, bool):
            result.integer_range = [IntegerRange(from_value=int(param.min), to_value=int(param.max))]
    return result


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
        initial = p.default if p.default is not None else ROS_TYPES[p.value_type]
        try:
            parameter = node.declare_parameter(p.name, initial, descriptor(p))
        except (InvalidParameterValueException, InvalidParameterTypeException, TypeError) as error:
            fallback = "leaving it unset" if p.default is None else f"using the default {p.default!r}"
            node.get_logger().error(f"parameter {p.name}: {error}; {fallback}")
            parameter = node.declare_parameter(p.name, initial, descriptor(p), ignore_override=True)
        values[p.name] = parameter.value
    return values


def parameter_values(node: Node, params: list[Param]) -> dict[str, ParamValue | None]:
    """The current values of ``params`` (declared with :func:`declare_parameters`; None for an optional one not
    given), as a lifecycle node reads them when it is configured."""
    return {p.name: node.get_parameter_or(p.name).value for p in params}
