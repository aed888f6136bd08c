"""Rewrite the build machine's include paths in the ROS 2 wheels' CMake exports.

The Kilted wheels export CMake targets whose include directories name the
machine they were built on (``/opt/python/cp311-cp311/...``), so building an
interface package against them fails. This rewrites those paths, in the
virtual environment only, to this interpreter's include directory and
numpy's. Running it again changes nothing.
"""
from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

import numpy

BUILD_PYTHON = "/opt/python/cp311-cp311"


def replacements() -> list[tuple[str, str]]:
    """Pairs (path on the wheels' build machine, path here), longest first."""
    return [
        (f"{BUILD_PYTHON}/lib/python3.11/site-packages/numpy/_core/include", numpy.get_include()),
        (f"{BUILD_PYTHON}/include/python3.11", sysconfig.get_paths()["include"]),
    ]


def patch(prefix: Path) -> int:
    """Patch every CMake file under ``prefix/share``; return how many changed."""
    changed = 0
    for path in (prefix / "share").glob("*/cmake/*.cmake"):
        text = path.read_text()
        if BUILD_PYTHON not in text:
            continue
        new = text
        for old, here in replacements():
            new = new.replace(old, here)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    print(f"patched {patch(root)} CMake files under {root}/share")
