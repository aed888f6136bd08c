"""The CPU a figure was measured on, for training reports and benchmark results: speed, and for int8 graphs
accuracy, depend on its vector extensions (see the emotion model card)."""
from __future__ import annotations

import platform
from pathlib import Path

SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
"""``/proc/cpuinfo`` flags that change how fast (or, for int8 without VNNI, how exactly) the networks run."""


def cpu_description() -> str:
    """The CPU's model name and its :data:`SPEED_FLAGS`, from ``/proc/cpuinfo`` (``platform.processor()``, the
    fallback, is empty on Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    fields: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return f"{fields.get('model name', platform.processor())} ({', '.join(f for f in SPEED_FLAGS if f in flags)})"
