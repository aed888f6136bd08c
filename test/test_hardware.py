"""The CPU description stored with training reports and benchmark results names the CPU and its vector extensions."""
from __future__ import annotations

from pathlib import Path

import pytest

from fer_perception.hardware import SPEED_FLAGS, cpu_description


def test_description_names_this_cpu_and_exactly_its_speed_flags() -> None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    lines = cpuinfo.read_text().splitlines()
    name = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    flags = set(next(line.split(":", 1)[1] for line in lines if line.startswith("flags")).split())
    description = cpu_description()
    assert description.startswith(f"{name} (")
    listed = set(description[len(name) + 2:-1].split(", ")) - {""}
    assert listed == {flag for flag in SPEED_FLAGS if flag in flags}
