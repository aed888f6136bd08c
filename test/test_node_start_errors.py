"""Nodes that cannot start (configuration, folder, damaged model) say why in one line and exit 1; the monitor
keeps every frame of a camera that changes its resolution."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from rclpy.parameter import Parameter

from fer_perception.nodes.monitor_node import MonitorNode
from fer_perception.paths import config_path


def run_node(module: str, *parameters: str) -> subprocess.CompletedProcess:
    args = [arg for parameter in parameters for arg in ("-p", parameter)]
    return subprocess.run([sys.executable, "-m", module, "--ros-args", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("module, parameter, reason", [
    ("fer_perception.nodes.expression_node", "emotion_config:=/nonexistent/emotion.yaml", "/nonexistent/emotion.yaml"),
    ("fer_perception.nodes.monitor_node", "out_dir:={file}/out", "cannot write to out_dir"),
    # The tests run as root, who may write anywhere chmod forbids; nobody can make a folder in /proc.
    ("fer_perception.nodes.monitor_node", "out_dir:=/proc/fer_out",
     "cannot write to out_dir /proc/fer_out: No such file or directory"),
    ("fer_perception.nodes.expression_node", "emotion_model:=fer2031", "unknown emotion model 'fer2031'; choose one "
     "of fer2013"),
])
def test_a_node_that_cannot_start_says_why_in_one_line_and_exits_1(module, parameter, reason, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    done = run_node(module, parameter.format(file=a_file))
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "cannot start" in line]
    assert len(lines) == 1 and reason in lines[0], done.stderr[-2000:]


def test_the_monitor_keeps_frames_of_a_new_size_in_its_video(ros_context, tmp_path):
    monitor = MonitorNode(context=ros_context, parameter_overrides=[Parameter("out_dir", value=str(tmp_path))])
    try:
        first = np.full((480, 640, 3), 200, np.uint8)
        smaller = np.full((240, 320, 3), 100, np.uint8)
        for image in (first, smaller, smaller, first):
            monitor.write_video(image)
    finally:
        monitor.destroy_node()
    capture = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    sizes = []
    while (read := capture.read())[0]:
        sizes.append(read[1].shape[:2])
    assert monitor.frames_written == 4 and sizes == [(480, 640)] * 4


@pytest.mark.parametrize("damage, backend", [("truncated .pt", "torch_eager"), ("corrupt .onnx", "onnxruntime_int8"),
                                             ("missing .pt", "torch_eager")])
def test_a_damaged_model_stops_the_expression_node_with_the_file_and_how_to_restore_it(damage, backend, tmp_path):
    shipped = Path(__file__).resolve().parent.parent / "models" / "emotion_fer2013.pt"
    model = tmp_path / "emotion.pt"
    if damage == "truncated .pt":
        model.write_bytes(shipped.read_bytes()[:5000])
    elif damage == "corrupt .onnx":
        model.write_bytes(shipped.read_bytes())
        (tmp_path / "emotion.int8.onnx").write_bytes(b"\x08\x07 not an onnx graph" * 50)
    config = yaml.safe_load(config_path("emotion.yaml").read_text())
    config["classifier"].update(model=str(model), backend=backend)
    emotion_yaml = tmp_path / "emotion.yaml"
    emotion_yaml.write_text(yaml.safe_dump(config))
    done = run_node("fer_perception.nodes.expression_node", f"emotion_config:={emotion_yaml}")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "cannot start" in line]
    assert len(lines) == 1 and str(tmp_path) in lines[0] and "git checkout -- models/" in lines[0], lines
