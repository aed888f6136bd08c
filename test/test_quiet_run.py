"""A first run shows only the project's own lines: MediaPipe's and TensorFlow Lite's C++ start-up logs are kept
off the terminal (FER_VERBOSE=1 brings them back), and nothing else is lost."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import media_path
from fer_perception.native_log_filter import NOISE

ROS_LOG = re.compile(r"^\[(INFO|WARN|ERROR)\] \[\d+\.\d+\] \[\w+\]: ")
MONITOR_LINE = re.compile(r"^\[(event|\d\d:\d\d:\d\d\.\d{3})\] ")  # events, and faces at a time of day


def fer_run(*arguments: str, verbose: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FER_VERBOSE"}
    if verbose:
        env["FER_VERBOSE"] = "1"
    return subprocess.run([sys.executable, "-m", "fer_perception.runner", "--drain", "0.5", *arguments],
                          capture_output=True, text=True, timeout=180, env=env)


def test_the_demo_run_prints_only_the_projects_own_lines(tmp_path):
    done = fer_run("monitor:=true", f"out_dir:={tmp_path}", f"source:={media_path('single_face.mp4')}")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    foreign = [line for line in lines if not (ROS_LOG.match(line) or MONITOR_LINE.match(line))]
    assert not foreign, f"{len(foreign)} lines that are not the project's: {foreign[:5]}"
    assert 10 <= len(lines) <= 40, f"{len(lines)} lines"
    assert any("appeared" in line for line in lines) and any("wrote 72 frames" in line for line in lines)


def test_verbose_brings_the_native_logs_back_and_errors_always_show():
    quiet, verbose = (fer_run("source:=/nonexistent/clip.mp4", verbose=v) for v in (False, True))
    assert quiet.returncode == verbose.returncode == 1
    noise = [line for line in verbose.stderr.splitlines() if NOISE.match(line.encode())]
    assert noise, "with FER_VERBOSE=1 MediaPipe's start-up lines show"
    assert not [line for line in quiet.stderr.splitlines() if NOISE.match(line.encode())]
    assert "/nonexistent/clip.mp4" in quiet.stderr, "the error line must survive the filter at exit"


def test_console_stamps_read_as_a_time_of_day_or_as_seconds_into_the_media():
    from datetime import datetime

    from fer_perception.report import stamp_text

    assert stamp_text(datetime(2026, 12, 5, 18, 29, 13, 250000).timestamp()) == "18:29:13.250"
    assert stamp_text(12.3456) == "12.346 s"
