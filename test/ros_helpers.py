"""Helpers for tests over real DDS: filled messages, a client node, publishing clips, waiting for messages."""
from __future__ import annotations

import importlib
import time
from collections.abc import Callable

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rosidl_parser import definition as idl

NUMPY_TYPES = {"float": np.float32, "double": np.float64, "octet": np.uint8, "int8": np.int8,
               "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
               "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64}


def filled(msg_class, seed: int = 1):
    """An instance of ``msg_class`` with every field set to a non-default, seed-dependent value."""
    rng = np.random.default_rng(seed)
    msg = msg_class()
    for name, slot in zip(msg_class.get_fields_and_field_types(), msg_class.SLOT_TYPES):
        setattr(msg, name, _value(slot, rng))
    return msg


def _value(slot, rng):
    if isinstance(slot, idl.AbstractNestedType):
        count = slot.size if isinstance(slot, idl.Array) else 3
        inner = slot.value_type
        if isinstance(inner, idl.BasicType) and inner.typename in NUMPY_TYPES:
            return _numbers(inner.typename, rng, count)
        return [_value(inner, rng) for _ in range(count)]
    if isinstance(slot, idl.AbstractGenericString):
        return f"text{rng.integers(1000)}"
    if isinstance(slot, idl.BasicType):
        if slot.typename == "boolean":
            return True
        return _numbers(slot.typename, rng, 1)[0].item()
    module = importlib.import_module(".".join(slot.namespaces))
    return filled(getattr(module, slot.name), int(rng.integers(1 << 30)))


def _numbers(typename: str, rng, count: int) -> np.ndarray:
    dtype = np.dtype(NUMPY_TYPES[typename])
    if dtype.kind == "f":
        return rng.uniform(-5, 5, count).astype(dtype)
    return rng.integers(1, 100, count).astype(dtype)


def wait_until(predicate: Callable[[], bool], timeout: float, spin: Callable[[], None] | None = None) -> bool:
    """Spin (or sleep) until ``predicate()`` holds or ``timeout`` seconds pass; return whether it held."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if spin is not None:
            spin()
        else:
            time.sleep(0.01)
    return predicate()


def await_subscribers(publishers, spin: Callable[[], None], timeout: float = 20.0) -> bool:
    """Spin until every publisher counts a subscriber, then the nodes' settle time more; whether they all did.

    Matching is asymmetric (see :mod:`fer_perception.nodes.discovery`): without the settle time a best-effort
    subscriber can drop the first message.
    """
    from fer_perception.nodes.discovery import SUBSCRIBER_SETTLE_PARAM

    if not wait_until(lambda: all(p.get_subscription_count() > 0 for p in publishers), timeout, spin):
        return False
    wait_until(lambda: False, SUBSCRIBER_SETTLE_PARAM.default, spin)
    return True


def publish_clip(publisher, frames, start_ns: int, fps: float, frame_id: str, spin, arrived=None,
                 start_timeout_s: float = 60.0, timeout_s: float = 10.0) -> list[int]:
    """Publish BGR ``frames`` with stamps from ``start_ns`` at ``fps``; return the stamps sent.

    Without ``arrived`` the frames go out in real time, at ``fps``. With it, each frame goes out once
    ``arrived(stamp_ns)`` holds for the one before, so the graph skips no frame however slow the machine
    (skipping under load is the live graph's design, and how much it skips is a benchmark figure, not a test
    result); the first frame may take ``start_timeout_s``, since the models warm up on it.
    """
    from fer_perception.nodes.messages import bgr8_image_msg, ns_to_stamp
    from std_msgs.msg import Header

    sent = []
    for index, frame in enumerate(frames):
        stamp_ns = start_ns + round(index * 1e9 / fps)
        publisher.publish(bgr8_image_msg(frame, Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)))
        sent.append(stamp_ns)
        if arrived is None:
            wait_until(lambda: False, 1 / fps, spin)
        else:
            assert wait_until(lambda: arrived(stamp_ns), start_timeout_s if index == 0 else timeout_s, spin), \
                f"frame {index} (stamp {stamp_ns}) did not come through"
    return sent


class Client:
    """A test node in ``context`` with its own executor; :meth:`spin` handles what has arrived."""

    def __init__(self, context, name: str):
        self.node = rclpy.create_node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def spin(self) -> None:
        self.executor.spin_once(timeout_sec=0.005)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
