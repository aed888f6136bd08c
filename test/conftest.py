"""Shared fixtures: the test data folder and ROS contexts.

Tests that need ``../shared/data`` fail with a message naming the missing
path (set ``FER_DATA_DIR`` to point elsewhere).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("FER_DATA_DIR", REPO.parent / "shared" / "data"))


def media_path(name: str) -> Path:
    """A file of ``$FER_DATA_DIR/media``; fails the test clearly when it is missing."""
    path = data_dir() / "media" / name
    if not path.is_file():
        pytest.fail(f"test data missing: {path} (set FER_DATA_DIR to the shared data folder)")
    return path


@pytest.fixture
def ros_context():
    """A fresh, isolated rclpy context with the package's DDS profile, shut down afterwards."""
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    from fer_perception.dds import apply_dds_profile

    apply_dds_profile()
    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    yield context
    context.try_shutdown()
