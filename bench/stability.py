"""Section 6: stability over a long run, live and offline: resident memory and threads.

The single-process graph (fer-run's way) processes a looped real clip with the
camera as fast as it goes until the expression node has processed
20,000 frames (300 with --quick). The offline analyser (fer-analyze's core,
with its decoding, face and expression threads) does the same on the clip
looped in memory. Resident memory (VmRSS) and the thread count of the
process are sampled along the way; growth is taken from the end of the
warm-up (the first 10 % of the frames) to the end.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from fer_msgs.msg import Expressions

from bench.figures import Figure
from bench.frames import video_frames
from bench.graph import _ProbeNode, graph_specs, write_clip
from fer_perception.annotate import letterbox
from fer_perception.nodes.qos import reliable
from fer_perception.offline.analysis import Analyzer
from fer_perception.offline.inputs import InputFrame
from fer_perception.runner import start_graph

SECTION = "stability"
WARMUP_FRACTION = 0.1


def process_status() -> tuple[float, int]:
    """Resident memory (MiB) and thread count of this process."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def growth_figures(samples: list[tuple[int, float, int]], frames_goal: int, seconds: float,
                   path: str) -> list[Figure]:
    """Memory and thread growth from the end of the warm-up to the end of a run of ``path``."""
    warm = next(s for s in samples if s[0] >= WARMUP_FRACTION * frames_goal)
    last = samples[-1]
    growth = 100 * (last[1] - warm[1]) / warm[1]
    thread_growth = max(s[2] for s in samples if s[0] >= warm[0]) - warm[2]
    note = f"{last[0]} frames in {seconds:.0f} s; warm-up {warm[0]} frames"
    issue = 6 if path == "live graph" else 30
    return [Figure(SECTION, f"{path}: resident memory after warm-up", warm[1], "MiB", issue=issue, note=note),
            Figure(SECTION, f"{path}: resident memory at the end", last[1], "MiB", issue=issue, note=note),
            Figure(SECTION, f"{path}: memory growth after warm-up", growth, "%", "<= 5", growth <= 5, issue, note),
            Figure(SECTION, f"{path}: thread count growth after warm-up", float(thread_growth), "", "0",
                   thread_growth <= 0, issue, f"{warm[2]} threads after warm-up")]


def offline_run(frames_goal: int) -> list[Figure]:
    """fer-analyze's core on the real clip looped in memory, frames stamped on one running timeline."""
    clip = [letterbox(f, 640, 480) for f in video_frames("single_face.mp4")]
    frames = (InputFrame(clip[i % len(clip)], i, i * 33_333_333, "soak", "camera") for i in range(frames_goal))
    analyzer = Analyzer.from_config(warn=lambda message: None)
    samples: list[tuple[int, float, int]] = []
    began = time.monotonic()
    try:
        for count, _ in enumerate(analyzer.analyse(frames), start=1):
            if count % 100 == 0:
                samples.append((count, *process_status()))
        analyzer.finish()
    finally:
        analyzer.close()
    return growth_figures(samples, frames_goal, time.monotonic() - began, "offline analyser")


def run(quick: bool) -> list[Figure]:
    frames_goal = 300 if quick else 20000
    return live_run(frames_goal) + offline_run(frames_goal)


def live_run(frames_goal: int) -> list[Figure]:
    """The single-process graph on a looped clip, the camera as fast as it goes."""
    samples: list[tuple[int, float, int]] = []
    with tempfile.TemporaryDirectory() as folder:
        clip = write_clip([letterbox(f, 640, 480) for f in video_frames("single_face.mp4")],
                          Path(folder) / "one_640.avi")
        processed = [0]
        began = time.monotonic()
        group = start_graph(graph_specs(clip, unthrottled=True))
        try:
            probe = group.add(_ProbeNode)

            def count(_: Expressions) -> None:
                processed[0] += 1
                if processed[0] % 100 == 0:
                    samples.append((processed[0], *process_status()))

            probe.create_subscription(Expressions, "/fer/expressions", count, reliable(50))
            group.spin_until(lambda: processed[0] >= frames_goal)
        finally:
            group.shutdown()
        seconds = time.monotonic() - began
    return growth_figures(samples, frames_goal, seconds, "live graph")
