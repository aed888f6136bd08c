"""Section 3: the live graph over real DDS, in one process (fer-run's way) and one process per node.

A camera publishes a real clip (640x480 or 1280x720, one or five faces) at
30 fps or as fast as it can; a client node measures, for each expressions
and events message, the time from the image stamp (the camera's clock at
capture) to its arrival. The sustained rate is compared with the same core
(front end + expression pipeline) called in a plain loop on the same frames,
measured in the same run.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from fer_msgs.msg import Events, Expressions
from rclpy.node import Node

from bench.figures import Figure
from bench.frames import five_faces_640x480, video_frames
from fer_perception.annotate import letterbox
from fer_perception.dds import apply_dds_profile
from fer_perception.graph import load_graph
from fer_perception.nodes.messages import stamp_to_ns
from fer_perception.nodes.qos import reliable
from fer_perception.nodes.runtime import NodeGroup
from fer_perception.offline.analysis import Analyzer
from fer_perception.offline.inputs import InputFrame
from fer_perception.runner import start_graph

SECTION = "graph"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def write_clip(frames: list[np.ndarray], path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def clips(folder: Path, quick: bool) -> dict[str, Path]:
    one = video_frames("single_face.mp4")
    made = {"640x480 1 face": write_clip([letterbox(f, 640, 480) for f in one], folder / "one_640.avi"),
            "640x480 5 faces": write_clip(five_faces_640x480(60), folder / "five_640.avi")}
    if not quick:
        made["1280x720 1 face"] = write_clip([letterbox(f, 1280, 720) for f in one], folder / "one_1280.avi")
    return made


class Probe:
    """Receives expressions and events and records stamp-to-arrival latencies."""

    def __init__(self, node):
        self.expression_latency: list[float] = []
        self.event_latency: list[float] = []
        self.arrivals: list[float] = []
        node.create_subscription(Expressions, "/fer/expressions", self.on_expressions, reliable(50))
        node.create_subscription(Events, "/fer/events", self.on_events, reliable(100))

    def on_expressions(self, msg: Expressions) -> None:
        now = time.time()
        self.arrivals.append(time.monotonic())
        self.expression_latency.append(now - stamp_to_ns(msg.header.stamp) / 1e9)

    def on_events(self, msg: Events) -> None:
        self.event_latency.append(time.time() - stamp_to_ns(msg.header.stamp) / 1e9)

    def reset(self) -> None:
        self.expression_latency.clear()
        self.event_latency.clear()
        self.arrivals.clear()


def graph_specs(clip: Path, unthrottled: bool):
    specs = load_graph().resolve({"source": str(clip)})
    for spec in specs:
        if spec.name == "camera":
            spec.overrides.update(loop=True, unthrottled=unthrottled, rate=30.0)
    return specs


def run_single_process(clip: Path, unthrottled: bool, seconds: float) -> tuple[Probe, dict[str, float]]:
    start_cpu = os.times()
    group = start_graph(graph_specs(clip, unthrottled))
    try:
        probe = Probe(group.add(_ProbeNode))
        _spin_measure(group, probe, seconds)
    finally:
        end_cpu = os.times()
        group.shutdown()
    wall = seconds + warmup_s(seconds)
    cpu = {"fer-run (all nodes)": 100 * (end_cpu.user + end_cpu.system - start_cpu.user - start_cpu.system) / wall}
    return probe, cpu


class _ProbeNode(Node):
    def __init__(self, context=None):
        super().__init__("fer_bench_probe", context=context)


def warmup_s(seconds: float) -> float:
    """Seconds run before measuring: 3, or 2 for the short windows of --quick."""
    return 3.0 if seconds >= 10 else 2.0



def _spin_measure(group: NodeGroup, probe: Probe, seconds: float) -> None:
    warm_end = time.monotonic() + warmup_s(seconds)
    group.spin_until(lambda: time.monotonic() > warm_end)
    probe.reset()
    end = time.monotonic() + seconds
    group.spin_until(lambda: time.monotonic() > end)


def run_multi_process(clip: Path, unthrottled: bool, seconds: float) -> tuple[Probe, dict[str, float]]:
    apply_dds_profile()
    processes = {}
    for spec in reversed(graph_specs(clip, unthrottled)):
        args = [sys.executable, "-m", f"fer_perception.nodes.{spec.executable}", *spec.process_args()]
        processes[spec.name] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if spec.name != "camera":
            time.sleep(2.0)  # the graph runs by the warm-up below (the camera would wait for the models anyway)
    group = NodeGroup()
    try:
        probe = Probe(group.add(_ProbeNode))
        warm_end = time.monotonic() + warmup_s(seconds)
        group.spin_until(lambda: time.monotonic() > warm_end)
        probe.reset()
        before = {name: _cpu_seconds(p.pid) for name, p in processes.items()}
        end = time.monotonic() + seconds
        group.spin_until(lambda: time.monotonic() > end)
        cpu = {name: 100 * (_cpu_seconds(p.pid) - before[name]) / seconds for name, p in processes.items()}
    finally:
        group.shutdown()
        for process in processes.values():
            # SIGTERM stops a node as Ctrl-C does (interrupt_on_stop_signals), also where SIGINT is ignored
            # (a benchmark started in the background inherits an ignored SIGINT).
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            process.wait(timeout=20)
    return probe, cpu


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def core_rate(clip: Path, frames_count: int = 150) -> float:
    """Frames per second of the same core in a plain loop (one thread, as fer-analyze's stages run one by one)."""
    capture = cv2.VideoCapture(str(clip))
    frames = []
    while (result := capture.read())[0]:
        frames.append(result[1])
    analyzer = Analyzer.from_config()
    start = None
    for index in range(frames_count + 20):
        if index == 20:
            start = time.perf_counter()
        analyzer.process(InputFrame(frames[index % len(frames)], index, index * 33_333_333, clip.name, "camera"))
    analyzer.close()
    return frames_count / (time.perf_counter() - start)


def _percentiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    ms = np.asarray(values) * 1000
    return float(np.median(ms)), float(np.percentile(ms, 95))


def run(quick: bool) -> list[Figure]:
    seconds = 4.0 if quick else 20.0
    figures = []
    with tempfile.TemporaryDirectory() as folder:
        made = clips(Path(folder), quick)
        modes = [("single process", run_single_process)] + ([] if quick else [("one process per node",
                                                                              run_multi_process)])
        for label, clip in made.items():
            plain = core_rate(clip)
            figures.append(Figure(SECTION, f"core in a plain loop, {label}", plain, "fps", issue=4))
            for mode, runner in modes:
                for unthrottled in (False, True):
                    if quick and unthrottled and label != "640x480 1 face":
                        continue
                    probe, cpu = runner(clip, unthrottled, seconds)
                    rate = len(probe.arrivals) / seconds
                    camera = "camera as fast as it can" if unthrottled else "camera 30 fps"
                    name = f"{mode}, {label}, {camera}"
                    p50, p95 = _percentiles(probe.expression_latency)
                    e50, e95 = _percentiles(probe.event_latency)
                    goal_p95 = {"single process": 25.0, "one process per node": 40.0}[mode]
                    one_face_30 = label == "640x480 1 face" and not unthrottled
                    figures += [
                        Figure(SECTION, f"{name}: expressions rate", rate, "fps", issue=4,
                               goal=">= 30" if label.endswith("5 faces") and not unthrottled else
                               (">= 0.7 x core" if unthrottled else ""),
                               met=(rate >= 0.7 * plain) if unthrottled else
                               ((rate >= 29.0) if label.endswith("5 faces") else None)),
                        Figure(SECTION, f"{name}: latency image->expressions p50", p50, "ms", issue=4),
                        Figure(SECTION, f"{name}: latency image->expressions p95", p95, "ms", issue=4,
                               goal=f"<= {goal_p95:.0f}" if one_face_30 else "",
                               met=(p95 is not None and p95 <= goal_p95) if one_face_30 else None),
                        Figure(SECTION, f"{name}: latency image->events p95", e95, "ms", issue=4,
                               note="" if e95 is not None else "no events in the window"),
                    ]
                    figures += [Figure(SECTION, f"{name}: CPU {who}", value, "%", issue=4)
                                for who, value in cpu.items()]
    return figures
