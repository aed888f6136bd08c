"""ros2 launch and fer-run start the same graph: both are built from config/graph.yaml."""
from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from fer_perception.graph import AUTOSTART, NodeSpec, activation_order, load_graph, parse_assignments
from fer_perception.nodes.runtime import lifecycle_state
from fer_perception.runner import node_class

LAUNCH_FILE = Path(__file__).resolve().parent.parent / "launch" / "fer.launch.py"


def test_defaults_give_camera_and_perception_and_arguments_switch_nodes():
    graph = load_graph()
    assert [s.name for s in graph.resolve()] == ["camera", "face_detection", "expression"]
    specs = {s.name: s for s in graph.resolve({"camera": "false", "monitor": "true", "image": "/usb_cam/image"})}
    assert sorted(specs) == ["behaviour_example", "expression", "face_detection", "monitor"]
    assert ("image", "/usb_cam/image") in specs["face_detection"].remappings
    assert ("image", "/usb_cam/image") in specs["monitor"].remappings
    with pytest.raises(ValueError, match="unknown graph argument"):
        graph.resolve({"sourec": "x"})
    with pytest.raises(ValueError, match="lifecycle:='automatic' is not one of auto, manual"):
        graph.resolve({"lifecycle": "automatic"})
    with pytest.raises(ValueError, match="monitor:='ture' is not true or false"):
        graph.resolve({"monitor": "ture"})


def test_runner_arguments_and_launch_arguments_carry_the_same_node_configuration():
    for spec in load_graph().resolve({"monitor": "true", "source": "0"}):
        kwargs = spec.launch_kwargs()
        args = spec.cli_args()
        files = [args[i + 1] for i, a in enumerate(args) if a == "--params-file"]
        remaps = [tuple(args[i + 1].split(":=")) for i, a in enumerate(args) if a == "-r"]
        assert kwargs["name"] == spec.name and kwargs["executable"] == spec.executable
        assert [p for p in kwargs["parameters"] if isinstance(p, str)] == files
        # Under ros2 launch a lifecycle node leaves its transitions to the launch's events (or your manager).
        assert [p for p in kwargs["parameters"] if isinstance(p, dict)] == (
            ([spec.overrides] if spec.overrides else []) + ([{AUTOSTART: False}] if spec.managed else []))
        assert kwargs["remappings"] == remaps
        for path in files:
            assert Path(path).is_file(), f"{spec.name}: missing parameter file {path}"
            assert "ros__parameters" in yaml.safe_load(Path(path).read_text())["/**"]
        assert node_class(spec.executable).__name__.endswith("Node")


def test_camera_source_argument_becomes_a_string_parameter():
    camera = next(s for s in load_graph().resolve({"source": "0"}) if s.name == "camera")
    assert camera.overrides["source"] == "0"


def test_bool_arguments_become_bool_parameters_and_left_empty_keep_the_parameter_file():
    camera = next(s for s in load_graph().resolve({"loop": "true", "wait_for_subscribers": "off"})
                  if s.name == "camera")
    assert camera.overrides["loop"] is True and camera.overrides["wait_for_subscribers"] is False
    camera = next(s for s in load_graph().resolve() if s.name == "camera")
    assert "loop" not in camera.overrides and "wait_for_subscribers" not in camera.overrides
    assert "-p" in camera.process_args() and 'source:="auto"' in camera.process_args()


def test_the_camera_is_activated_after_the_perception_and_waits_for_it_itself():
    specs = load_graph().resolve({"monitor": "true"})
    assert [s.name for s in activation_order(specs)] == ["expression", "face_detection", "camera"]
    camera = next(s for s in specs if s.name == "camera")
    assert camera.activate_after == ("face_detection", "expression")
    assert camera.overrides["wait_for_nodes"] == "face_detection,expression"
    assert {s.name for s in specs if s.managed} == {"camera", "face_detection", "expression"}
    assert not any(s.activate for s in load_graph().resolve({"lifecycle": "manual"}))
    without_camera = load_graph().resolve({"camera": "false"})
    assert [s.name for s in activation_order(without_camera)] == ["expression", "face_detection"]
    looped = [NodeSpec("a", "x", (), activate=True, activate_after=("b",)),
              NodeSpec("b", "x", (), activate=True, activate_after=("a",))]
    with pytest.raises(ValueError, match="cycle"):
        activation_order(looped)


def test_fer_run_leaves_the_lifecycle_nodes_unconfigured_with_lifecycle_manual(ros_context):
    from fer_perception.runner import start_graph

    group = start_graph(load_graph().resolve({"camera": "false", "lifecycle": "manual"}))
    try:
        assert {n.get_name(): lifecycle_state(n) for n in group.nodes} == {
            "face_detection": "unconfigured", "expression": "unconfigured"}
    finally:
        group.shutdown()


def test_emotion_model_argument_names_the_model_and_left_empty_keeps_the_parameter_file():
    expression = next(s for s in load_graph().resolve({"emotion_model": "fer2013"}) if s.name == "expression")
    assert expression.overrides == {"emotion_model": "fer2013"}
    expression = next(s for s in load_graph().resolve() if s.name == "expression")
    assert "emotion_model" not in expression.overrides


@pytest.mark.parametrize("argument, node, value, parameter", [
    ("detector", "face_detection", "mediapipe_short_range", "mediapipe_short_range"),
    ("emotion_backend", "expression", "torch", "torch"),
    ("coarse_to_fine", "expression", "true", True),
    ("coarse_to_fine", "expression", "off", False),
    ("emotion_smoothing", "expression", "attention", "attention"),
    ("au_estimator", "expression", "learned", "learned"),
])
def test_model_choice_arguments_override_one_parameter_and_left_empty_keep_the_files(argument, node, value,
                                                                                      parameter):
    spec = next(s for s in load_graph().resolve({argument: value}) if s.name == node)
    default = next(s for s in load_graph().resolve() if s.name == node)
    assert spec.overrides == {**default.overrides, argument: parameter}
    assert argument not in default.overrides
    assert f"{argument}:={json.dumps(parameter)}" in spec.process_args()


def test_parse_assignments():
    assert parse_assignments(["source:=a.mp4", "monitor:=true"]) == {"source": "a.mp4", "monitor": "true"}
    with pytest.raises(ValueError):
        parse_assignments(["source=a.mp4"])


def test_launch_file_builds_nodes_only_from_the_graph_description():
    tree = ast.parse(LAUNCH_FILE.read_text())
    calls = {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
             for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert {"load_graph", "resolve", "launch_kwargs", "ChangeState"} <= calls

    def names(func: ast.expr) -> set[str]:
        return {n.id for n in ast.walk(func) if isinstance(n, ast.Name)}

    node_calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and names(n.func) & {"Node", "LifecycleNode"}]
    assert node_calls and all(names(n.func) <= {"Node", "LifecycleNode", "spec"} for n in node_calls)
    assert all(not n.args and [k.arg for k in n.keywords] == [None] for n in node_calls), \
        "Node(...) and LifecycleNode(...) must take their arguments only from NodeSpec.launch_kwargs()"


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros not installed (no system ROS)")
def test_launch_description_matches_the_runner():
    from launch import LaunchContext
    from launch_ros.actions import LifecycleNode, Node

    spec = importlib.util.spec_from_file_location("fer_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    nodes = []
    for entity in description.entities:
        result = entity.visit(context) or []
        nodes += [e for e in result if isinstance(e, Node)]
    assert sorted(n.node_executable for n in nodes) == sorted(s.executable for s in load_graph().resolve())
    assert {n.node_executable for n in nodes if isinstance(n, LifecycleNode)} == {
        s.executable for s in load_graph().resolve() if s.managed}
