"""The Fast DDS profile that lets camera images cross processes.

With Fast DDS defaults, a 640x480 image published best-effort to another
process arrives almost never: it does not fit the default shared-memory
segment and is fragmented over UDP with small socket buffers, and a lost
fragment loses the frame. ``config/fastdds_profile.xml`` enlarges the
shared-memory segment (16 MiB) and the UDP buffers (4 MiB). The launch file
and the in-process runner point ``FASTDDS_DEFAULT_PROFILES_FILE`` at it unless
the user has set their own; it must be set before the first ROS context starts.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

from fer_perception.paths import config_path

PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
PROFILE_FILE = "fastdds_profile.xml"


def profile_path() -> str:
    return str(config_path(PROFILE_FILE))


def apply_dds_profile(environ: MutableMapping[str, str] = os.environ) -> str:
    """Set the profile in ``environ`` unless one is set already; return the one in force."""
    return environ.setdefault(PROFILE_ENV, profile_path())
