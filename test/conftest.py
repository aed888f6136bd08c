"""Shared fixtures: the test data folder, ROS contexts, and the test session's private DDS scope.

Tests that need ``../shared/data`` fail with a message naming the missing
path (set ``FER_DATA_DIR`` to point elsewhere).

A graph beside the tests (a demo, another user's, another test run) would
otherwise share their topics and double every face and event. At import,
before any ROS context exists, this module gives the session a ROS domain of
its own (one that no participant on this host uses) and limits discovery to
this host; nodes and graphs the tests start as subprocesses inherit both.
"""
from __future__ import annotations

import os
import random
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    import torch

    from fer_perception.emotion.checkpoint import ModelSpec

REPO = Path(__file__).resolve().parent.parent
# ROS 2's domain ids that map to valid ports on Linux whatever the number of participants; 0, the default, is
# where demos and robots run.
TEST_DOMAIN_IDS = range(1, 102)
# RTPS port mapping (spec 9.6.1.1): a domain's first participant takes this unicast discovery port.
PORT_BASE, DOMAIN_GAIN, UNICAST_OFFSET = 7400, 250, 10


def _domain_in_use(domain_id: int) -> bool:
    """Whether a participant on this host is in ``domain_id`` (its first participant's discovery port is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("", PORT_BASE + DOMAIN_GAIN * domain_id + UNICAST_OFFSET))
        except OSError:
            return True
    return False


def _private_domain_id(outside: str) -> int:
    """A random domain id other than ``outside`` that no participant on this host uses (any other if all are)."""
    candidates = [domain for domain in TEST_DOMAIN_IDS if str(domain) != outside]
    random.shuffle(candidates)
    return next((domain for domain in candidates if not _domain_in_use(domain)), candidates[0])


# The domain the session was started in, where graphs outside the tests run.
OUTSIDE_DOMAIN_ID = os.environ.get("ROS_DOMAIN_ID") or "0"
os.environ["ROS_DOMAIN_ID"] = str(_private_domain_id(OUTSIDE_DOMAIN_ID))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_STATIC_PEERS", None)  # peers would be contacted even with LOCALHOST
# No test opens a window on the developer's screen (the monitor's show: auto would): the window tests start a
# virtual display of their own.
os.environ.pop("DISPLAY", None)
os.environ.pop("WAYLAND_DISPLAY", None)


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
