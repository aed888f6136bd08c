"""A processing stage's health in figures, and the level they earn, without ROS.

An operator looking at ``/diagnostics`` (``rqt_robot_monitor``) wants the
same questions answered by every node of the graph: does input arrive, and
how fast; how long does the node take per input; how much does it drop, and
why; how many faces does it see; what does it run. :class:`StageStats`
counts these as a node works (from its callbacks and worker threads),
:func:`assess` turns a window's figures into OK, WARN or ERROR against
:class:`Thresholds`, and :func:`report_fields` writes them as the key/value
pairs every node publishes (``fer_perception.nodes.diagnostics``). Kept free
of ROS so that the figures and the rules are tested on their own and are the
same in every node.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

MAX_SAMPLES = 10_000
"""Processing times kept per window at most (a 60 s window at 120 Hz fits)."""

FIELDS = ("input_rate_hz", "processing_p50_ms", "processing_p95_ms", "frames_received", "frames_processed",
          "frames_dropped", "dropped_by_cause", "faces_tracked", "backend", "seconds_since_input")
"""The keys of every node's status, in this order (see :func:`report_fields`)."""
BUSY = "busy"
"""Drop cause: a newer input came before the node was free for this one."""
FAILED = "failed"
"""Drop cause: processing raised (logged); the node went on with the next input."""


class Level(IntEnum):
    """A status level; the values are diagnostic_msgs/DiagnosticStatus's."""

    OK = 0
    WARN = 1
    ERROR = 2


@dataclass(frozen=True)
class Thresholds:
    """When a stage stops being OK: WARN below ``min_rate_hz`` of input, above ``max_p95_ms`` of processing or
    above ``max_drop_fraction`` of its inputs dropped (0, 0 and 1 turn those checks off); ERROR after
    ``stale_s`` seconds without input."""

    min_rate_hz: float
    max_p95_ms: float
    max_drop_fraction: float
    stale_s: float


@dataclass(frozen=True)
class StageReport:
    """A window's figures (rate, processing times, what was dropped in it) and the totals since the start."""

    input_rate_hz: float
    processing_p50_ms: float
    processing_p95_ms: float
    received: int
    processed: int
    dropped: dict[str, int]
    window_processed: int
    window_dropped: int
    seconds_since_input: float
    faces: int | None
    idle_reason: str

    @property
    def drop_fraction(self) -> float:
        """The share of the window's inputs that were dropped rather than processed (0 without any)."""
        handled = self.window_processed + self.window_dropped
        return self.window_dropped / handled if handled else 0.0


class StageStats:
    """Thread-safe counts of one stage since it started: inputs received, processed (with their processing
    times) and dropped (by cause), and the faces it sees. :meth:`report` closes a window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._received = self._processed = 0
        self._dropped: Counter[str] = Counter()
        self._times: deque[float] = deque(maxlen=MAX_SAMPLES)
        self._last_input = self._window_start = clock()
        self._window_received = self._window_processed = self._window_dropped = 0
        self._idle_reason = ""
        self.faces: int | None = None
        """Faces the stage tracks now; None where the stage does not look at faces."""

    @property
    def received_total(self) -> int:
        """Inputs received since the start."""
        return self._received

    @property
    def processed_total(self) -> int:
        """Inputs processed since the start."""
        return self._processed

    def dropped_by_cause(self) -> dict[str, int]:
        """Inputs dropped since the start, by cause."""
        with self._lock:
            return dict(self._dropped)

    def received(self) -> None:
        """One input arrived."""
        with self._lock:
            self._received += 1
            self._window_received += 1
            self._last_input = self._clock()

    def processed(self, seconds: float) -> None:
        """One input was processed, in ``seconds``."""
        with self._lock:
            self._processed += 1
            self._window_processed += 1
            self._times.append(seconds)

    def dropped(self, cause: str, count: int = 1) -> None:
        """``count`` inputs were not processed, for ``cause`` (a word or two: "busy", "corrupt data")."""
        if count <= 0:
            return
        with self._lock:
            self._dropped[cause] += count
            self._window_dropped += count

    def idle(self, reason: str) -> None:
        """No input is expected now, for ``reason`` (a source waiting for its subscribers, or at its end): the
        stage is OK without input until :meth:`expect_input`."""
        with self._lock:
            self._idle_reason = reason

    def expect_input(self) -> None:
        """Input is expected again, from now on."""
        with self._lock:
            self._idle_reason = ""
            self._last_input = self._clock()

    def report(self) -> StageReport:
        """The figures of the window since the previous report (or the start), which this closes."""
        with self._lock:
            now = self._clock()
            times_ms = 1000.0 * np.asarray(self._times, dtype=float)
            p50, p95 = np.percentile(times_ms, [50, 95]) if times_ms.size else (float("nan"), float("nan"))
            report = StageReport(
                input_rate_hz=self._window_received / max(now - self._window_start, 1e-9),
                processing_p50_ms=float(p50), processing_p95_ms=float(p95),
                received=self._received, processed=self._processed, dropped=dict(self._dropped),
                window_processed=self._window_processed, window_dropped=self._window_dropped,
                seconds_since_input=now - self._last_input, faces=self.faces, idle_reason=self._idle_reason)
            self._times.clear()
            self._window_start = now
            self._window_received = self._window_processed = self._window_dropped = 0
        return report


def assess(report: StageReport, thresholds: Thresholds) -> tuple[Level, str]:
    """The level ``report`` earns against ``thresholds`` and a message saying why ("ok" when nothing is wrong).
    An idle stage is OK with its reason; a stage without input for ``stale_s`` is ERROR; every threshold crossed
    otherwise is a WARN, all named."""
    if report.idle_reason:
        return Level.OK, report.idle_reason
    if report.seconds_since_input > thresholds.stale_s:
        return Level.ERROR, f"no input for {report.seconds_since_input:.1f} s"
    problems = []
    if report.input_rate_hz < thresholds.min_rate_hz:
        problems.append(f"input {report.input_rate_hz:.1f} Hz below {thresholds.min_rate_hz:g} Hz")
    if thresholds.max_p95_ms > 0 and report.processing_p95_ms > thresholds.max_p95_ms:
        problems.append(f"processing p95 {report.processing_p95_ms:.1f} ms above {thresholds.max_p95_ms:g} ms")
    if report.drop_fraction > thresholds.max_drop_fraction:
        problems.append(f"dropped {report.drop_fraction:.0%} of the inputs "
                        f"(more than {thresholds.max_drop_fraction:.0%})")
    return (Level.WARN, "; ".join(problems)) if problems else (Level.OK, "ok")


def drop_summary(dropped: dict[str, int]) -> str:
    """``dropped`` (counts by cause) in words: "busy: 3, corrupt data: 1", or "none"."""
    return ", ".join(f"{cause}: {count}" for cause, count in sorted(dropped.items())) or "none"


def report_fields(report: StageReport, backend: str) -> dict[str, str]:
    """The key/value pairs of :data:`FIELDS` for ``report``; ``backend`` names what the stage runs."""
    return {
        "input_rate_hz": f"{report.input_rate_hz:.2f}",
        "processing_p50_ms": f"{report.processing_p50_ms:.2f}",
        "processing_p95_ms": f"{report.processing_p95_ms:.2f}",
        "frames_received": str(report.received),
        "frames_processed": str(report.processed),
        "frames_dropped": str(sum(report.dropped.values())),
        "dropped_by_cause": drop_summary(report.dropped),
        "faces_tracked": "n/a" if report.faces is None else str(report.faces),
        "backend": backend,
        "seconds_since_input": f"{report.seconds_since_input:.2f}",
    }
