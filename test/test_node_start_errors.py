"""Nodes that cannot start say why in one line and exit 1; the monitor keeps every frame of a camera that
changes its resolution."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from rclpy.parameter import Parameter

from fer_perception.nodes.monitor_node import MonitorNode


def run_node(module: str, *parameters: str) -> subprocess.CompletedProcess:
    args = [arg for parameter in parameters for arg in ("-p", parameter)]
    return subprocess.run([sys.executable, "-m", module, "--ros-args", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("module, parameter, reason", [
    ("fer_perception.nodes.expression_node", "emotion_config:=/nonexistent/emotion.yaml", "/nonexistent/emotion.yaml"),
    ("fer_perception.nodes.monitor_node", "out_dir:={file}/out", "cannot write to out_dir"),
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
