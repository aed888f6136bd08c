"""make bench: run every benchmark section, print one table, write bench/results/latest.json.

``--quick`` (``make bench QUICK=1``) runs a reduced set in under a minute for
regression checks. A figure that could not be measured (a stage that does not
exist, no events in a window) is reported as missing, never as zero.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

from bench import action_units, emotion, graph, offline, smoothing, stability, stages, tracking
from fer_perception.hardware import cpu_description

SECTIONS = {"stages": stages.run, "tracking": tracking.run, "action_units": action_units.run,
            "emotion": emotion.run, "offline": offline.run, "smoothing": smoothing.run, "graph": graph.run, "stability": stability.run}
RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("ros-rclpy", "mediapipe", "torch", "numpy", "opencv-contrib-python", "rosbags")


def machine() -> dict:
    cpu = cpu_description()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "packages": versions,
            "commit": commit}


def print_table(figures) -> None:
    print(f"{'section':<9} {'figure':<72} {'value':>10} {'unit':<5} {'goal':<14} met")
    for f in figures:
        value = "missing" if f.value is None else f"{f.value:.3f}"
        met = "" if f.met is None else ("yes" if f.met else "NO")
        print(f"{f.section:<9} {f.name:<72} {value:>10} {f.unit:<5} {f.goal:<14} {met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced set, under a minute")
    parser.add_argument("--only", choices=sorted(SECTIONS), nargs="*", help="run only these sections")
    options = parser.parse_args()
    started = time.time()
    figures = []
    for name, run in SECTIONS.items():
        if options.only and name not in options.only:
            continue
        figures += run(options.quick)
    print_table(figures)
    RESULTS.mkdir(exist_ok=True)
    report = {"quick": options.quick, "seconds": round(time.time() - started, 1), "machine": machine(),
              "figures": [f.as_dict() for f in figures]}
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {RESULTS / 'latest.json'} in {report['seconds']} s")


if __name__ == "__main__":
    main()
