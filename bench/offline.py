"""Section 2: offline analysis (fer-analyze) of a 640x360 single-face clip, with and without --render.

The clip is the shared single_face.mp4 looped to ``LOOPS`` times its length
(so start-up of the MediaPipe graphs does not dominate), written once as
mp4; each run is a full ``fer-analyze`` invocation and the figures are the
medians over the runs of what it reports in ``summary.json`` (analysis
frames per second and real-time factor, without the model loading; the
render time separately).
"""
from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

import cv2

from bench.figures import Figure
from bench.frames import video_frames
from fer_perception.offline.analyze_cli import main as analyze

SECTION = "offline"


def looped_clip(folder: Path, loops: int) -> Path:
    frames = video_frames("single_face.mp4")
    path = folder / "single_face_looped.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, frames[0].shape[1::-1])
    for _ in range(loops):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return path


def run(quick: bool) -> list[Figure]:
    loops, runs = (2, 2) if quick else (8, 3)
    fps, realtime, render_ms = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        clip = looped_clip(Path(folder), loops)
        for index in range(runs):
            out = Path(folder) / f"run{index}"
            options = ["--render"] if index == runs - 1 else []
            if analyze([str(clip), "--out", str(out), "--quiet", *options]) != 0:
                raise SystemExit("fer-analyze failed in the benchmark")
            summary = json.loads((out / "summary.json").read_text())
            fps.append(summary["analysis_fps"])
            realtime.append(summary["realtime_factor"])
            if "render_seconds" in summary:
                render_ms.append(1000 * summary["render_seconds"] / summary["frames"])
    note = f"single_face.mp4 (640x360) looped {loops}x = {loops * 72} frames; median of {runs} runs"
    analysis_fps, factor = statistics.median(fps), statistics.median(realtime)
    return [Figure(SECTION, "fer-analyze, 640x360 1 face, without --render", analysis_fps, "fps", ">= 90",
                   analysis_fps >= 90, 5, note),
            Figure(SECTION, "fer-analyze real-time factor, without --render", factor, "x", ">= 3", factor >= 3, 5,
                   note),
            Figure(SECTION, "--render cost per frame (timing diagrams + mp4 encode)", render_ms[0], "ms", issue=5,
                   note="one run, after the analysis")]
