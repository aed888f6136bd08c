"""Shared fixtures: the test data folder and ROS contexts.

Tests that need ``../shared/data`` fail with a message naming the missing
path (set ``FER_DATA_DIR`` to point elsewhere).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    import torch

    from fer_perception.emotion.checkpoint import ModelSpec

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


@pytest.fixture(scope="session")
def small_fer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 train, 64 val and 64 test faces of FER2013 in the same layout."""
    path = data_dir() / "fer2013" / "fer2013.npz"
    if not path.is_file():
        pytest.fail(f"test data missing: {path} (set FER_DATA_DIR to the shared data folder)")
    with np.load(path) as data:
        keep = np.concatenate([np.flatnonzero(data["split"] == index)[:count]
                               for index, count in ((0, 256), (1, 64), (2, 64))])
        small = tmp_path_factory.mktemp("fer") / "small.npz"
        np.savez(small, images=data["images"][keep], labels=data["labels"][keep], split=data["split"][keep],
                 classes=data["classes"], split_names=data["split_names"])
    return small


def assert_stem_statistics_are_those_of_the_train_faces(network: torch.nn.Module, spec: ModelSpec,
                                                         data: Path) -> None:
    """The first BatchNorm's statistics of an emotion network are its stem's over the un-augmented train faces of
    ``data`` (as after weight averaging, which recomputes them)."""
    import torch

    from fer_perception.emotion.dataset import normalise

    with np.load(data) as content:
        faces = torch.from_numpy(content["images"][content["split"] == 0])
    with torch.no_grad():
        stem = network.conv1(normalise(faces, spec.mean, spec.std))
    assert torch.allclose(network.bn1.running_mean, stem.mean((0, 2, 3)), atol=1e-4)
    assert torch.allclose(network.bn1.running_var, stem.var((0, 2, 3)), rtol=1e-3)
