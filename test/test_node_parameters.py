"""Every declared parameter of every perception node refuses out-of-range, wrong-type and unknown-choice values,
at start-up (the default is kept, with the reason logged) and at run time (refused with a reason, the previous
value kept)."""
from __future__ import annotations

import pytest
from rclpy.parameter import Parameter

from conftest import media_path
from fer_perception.nodes import camera_node, expression_node, face_detection_node, monitor_node
from fer_perception.emotion.classifier import BACKENDS
from fer_perception.expression_pipeline import EMOTION_SMOOTHING_METHODS, load_yaml
from fer_perception.nodes.runtime import bring_up
from fer_perception.parameter_spec import Param
from fer_perception.paths import config_path

NODES = {
    "camera": (camera_node.CameraNode, camera_node.PARAMS, {"source": "single_face.mp4"}),
    "face_detection": (face_detection_node.FaceDetectionNode,
                       face_detection_node.FRONT_END_PARAMS + face_detection_node.NODE_PARAMS, {}),
    "expression": (expression_node.ExpressionNode, expression_node.PARAMS, {}),
    "monitor": (monitor_node.MonitorNode, monitor_node.PARAMS, {"out_dir": "{tmp}"}),
}


def bad_values(param: Param) -> list[object]:
    """Values ``param`` must refuse: out of range, not one of its choices, of another type."""
    values: list[object] = []
    if param.min is not None:
        values += [param.min - 1, param.max + 1]
    if param.choices:
        values.append("no-such-choice")
    values.append([1, 2] if isinstance(param.default, str) else "not a number")
    return values


def start(name: str, tmp_path, context, overrides: list[Parameter] = ()):
    node_class, _, fixed = NODES[name]
    values = {k: (str(media_path(v)) if k == "source" else v.format(tmp=tmp_path)) for k, v in fixed.items()}
    return node_class(context=context, parameter_overrides=[
        *[Parameter(k, value=v) for k, v in values.items()], *overrides])


@pytest.mark.parametrize("name", NODES)
def test_bad_values_are_refused_at_start_and_at_run_time(name, tmp_path, ros_context):
    params = [p for p in NODES[name][1] if p.name not in NODES[name][2]]
    start_up = [Parameter(p.name, value=bad_values(p)[0]) for p in params if bad_values(p)]
    node = start(name, tmp_path, ros_context, start_up)
    try:
        for param in params:
            assert node.get_parameter_or(param.name).value == param.default, f"{name}.{param.name} at start"
            for value in bad_values(param):
                try:
                    result = node.set_parameters([Parameter(param.name, value=value)])[0]
                    refused, reason = not result.successful, result.reason
                except Exception as error:  # noqa: BLE001 - rclpy refuses a wrong type by raising
                    refused, reason = True, str(error)
                assert refused and reason, f"{name}.{param.name}={value!r} was accepted"
                assert node.get_parameter_or(param.name).value == param.default, f"{name}.{param.name} changed"
    finally:
        node.destroy_node()


def test_a_qos_override_given_as_a_parameter_takes_effect(ros_context):
    from rclpy.qos import ReliabilityPolicy

    node = expression_node.ExpressionNode(context=ros_context, parameter_overrides=[
        Parameter("qos_overrides./expressions.publisher.depth", value=3),
        Parameter("qos_overrides./expressions.publisher.reliability", value="best_effort"),
        Parameter("qos_overrides./faces.subscription.depth", value=25)])
    try:
        bring_up(node)
        assert node.expressions_pub.qos_profile.depth == 3
        assert node.expressions_pub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        assert node.events_pub.qos_profile.depth == 100, "what is not overridden keeps the REP-2003 default"
        faces = next(s for s in node.subscriptions if s.topic_name == "/faces")
        assert faces.qos_profile.depth == 25
        assert node.get_parameter("qos_overrides./events.publisher.reliability").value == "reliable"
    finally:
        node.destroy_node()


def test_the_model_choices_given_as_parameters_replace_the_configuration_files(ros_context):
    """emotion_backend, coarse_to_fine and emotion_smoothing override emotion.yaml and expression.yaml; left out,
    the files' choices stand."""
    emotion = load_yaml(config_path("emotion.yaml"))
    files = (emotion["classifier"]["backend"], bool(emotion["coarse_to_fine"]),
             load_yaml(config_path("expression.yaml"))["smoothing"]["emotion_method"])
    chosen = {"emotion_backend": next(b for b in BACKENDS if b != files[0]), "coarse_to_fine": not files[1],
              "emotion_smoothing": next(m for m in EMOTION_SMOOTHING_METHODS if m != files[2])}
    for overrides, expected in ((chosen, tuple(chosen.values())), ({}, files)):
        node = expression_node.ExpressionNode(context=ros_context, parameter_overrides=[
            Parameter(name, value=value) for name, value in overrides.items()])
        try:
            bring_up(node)
            pipeline = node.pipeline
            assert (pipeline.classifier.backend, pipeline.coarse_to_fine, pipeline.smoothing.emotion_method) == \
                expected
        finally:
            node.destroy_node()
