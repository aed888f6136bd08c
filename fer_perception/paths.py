"""Where the package's data (config, models, media) lives.

From a source checkout (or a colcon ``--symlink-install``) that is the
repository root; from an installed package it is the ament share directory.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

PACKAGE = "fer_perception"


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """The folder holding ``config/``, ``models/``, ``media/`` and ``launch/``."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "config" / "graph.yaml").is_file():
        return checkout
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE))


def config_path(name: str) -> Path:
    return share_dir() / "config" / name


def demo_clip() -> Path:
    """The bundled demo clip (see media/README.md for its source)."""
    return share_dir() / "media" / "demo_face.mp4"


def data_dir() -> Path:
    """The shared data folder (FER2013, test media): ``$FER_DATA_DIR`` or ``../shared/data``."""
    default = share_dir().parent / "shared" / "data"
    return Path(os.environ.get("FER_DATA_DIR", default))
