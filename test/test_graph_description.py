"""ros2 launch and fer-run start the same graph: both are built from config/graph.yaml."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

from fer_perception.graph import load_graph, parse_assignments
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


def test_runner_arguments_and_launch_arguments_carry_the_same_node_configuration():
    for spec in load_graph().resolve({"monitor": "true", "source": "0"}):
        kwargs = spec.launch_kwargs()
        args = spec.cli_args()
        files = [args[i + 1] for i, a in enumerate(args) if a == "--params-file"]
        remaps = [tuple(args[i + 1].split(":=")) for i, a in enumerate(args) if a == "-r"]
        assert kwargs["name"] == spec.name and kwargs["executable"] == spec.executable
        assert [p for p in kwargs["parameters"] if isinstance(p, str)] == files
        assert [p for p in kwargs["parameters"] if isinstance(p, dict)] == ([spec.overrides] if spec.overrides else [])
        assert kwargs["remappings"] == remaps
        for path in files:
            assert Path(path).is_file(), f"{spec.name}: missing parameter file {path}"
            assert "ros__parameters" in yaml.safe_load(Path(path).read_text())["/**"]
        assert node_class(spec.executable).__name__.endswith("Node")


def test_camera_source_argument_becomes_a_string_parameter():
    camera = next(s for s in load_graph().resolve({"source": "0"}) if s.name == "camera")
    assert camera.overrides == {"source": "0"}


def test_emotion_model_argument_names_the_model_and_left_empty_keeps_the_parameter_file():
    expression = next(s for s in load_graph().resolve({"emotion_model": "fer2013"}) if s.name == "expression")
    assert expression.overrides == {"emotion_model": "fer2013"}
    expression = next(s for s in load_graph().resolve() if s.name == "expression")
    assert "emotion_model" not in expression.overrides


def test_parse_assignments():
    assert parse_assignments(["source:=a.mp4", "monitor:=true"]) == {"source": "a.mp4", "monitor": "true"}
    with pytest.raises(ValueError):
        parse_assignments(["source=a.mp4"])


def test_launch_file_builds_nodes_only_from_the_graph_description():
    tree = ast.parse(LAUNCH_FILE.read_text())
    calls = {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
             for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert {"load_graph", "resolve", "launch_kwargs", "Node"} <= calls
    node_calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Node"]
    assert all(not n.args and [k.arg for k in n.keywords] == [None] for n in node_calls), \
        "Node(...) must take its arguments only from NodeSpec.launch_kwargs()"


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros not installed (no system ROS)")
def test_launch_description_matches_the_runner():
    from launch import LaunchContext
    from launch_ros.actions import Node

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
