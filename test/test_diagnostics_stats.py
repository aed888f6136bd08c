"""The figures every node publishes on /diagnostics and the level they earn, without ROS: rates and processing
percentiles over a window, drops by cause, each threshold's WARN, silence's ERROR, an idle source's OK; and the
slot and sequence counters the nodes take their "busy" drops from."""
from __future__ import annotations

import math
import threading

import pytest

from fer_perception.diagnostics_stats import (BUSY, FIELDS, Level, StageStats, Thresholds, assess, drop_summary,
                                              report_fields)
from fer_perception.latest_slot import LatestSlot, SequenceGaps

THRESHOLDS = Thresholds(min_rate_hz=5.0, max_p95_ms=100.0, max_drop_fraction=0.5, stale_s=2.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stream(stats: StageStats, clock: FakeClock, frames: int, fps: float, times_ms: list[float]) -> None:
    """``frames`` inputs at ``fps``, each processed in the next of ``times_ms`` (cycled)."""
    for index in range(frames):
        clock.now += 1 / fps
        stats.received()
        stats.processed(times_ms[index % len(times_ms)] / 1000)


def test_a_window_gives_the_input_rate_and_processing_percentiles_and_the_next_starts_afresh():
    clock = FakeClock()
    stats = StageStats(clock)
    stream(stats, clock, 100, 50.0, [float(ms) for ms in range(1, 101)])
    report = stats.report()
    assert report.input_rate_hz == pytest.approx(50.0)
    assert report.processing_p50_ms == pytest.approx(50.5) and report.processing_p95_ms == pytest.approx(95.05)
    assert (report.received, report.processed, report.dropped, report.seconds_since_input) == (100, 100, {}, 0.0)
    assert assess(report, THRESHOLDS) == (Level.OK, "ok")

    clock.now += 1.0
    quiet = stats.report()
    assert quiet.input_rate_hz == 0.0 and math.isnan(quiet.processing_p50_ms) and math.isnan(quiet.processing_p95_ms)
    assert (quiet.received, quiet.processed) == (100, 100), "totals run on across windows"
    assert quiet.seconds_since_input == pytest.approx(1.0)


def test_drops_are_counted_by_cause_and_their_share_is_the_windows():
    clock = FakeClock()
    stats = StageStats(clock)
    stream(stats, clock, 10, 10.0, [5.0])
    stats.dropped(BUSY, 2)
    stats.dropped("corrupt data")
    stats.dropped(BUSY, 0)
    report = stats.report()
    assert report.dropped == stats.dropped_by_cause() == {BUSY: 2, "corrupt data": 1}
    assert report.drop_fraction == pytest.approx(3 / 13)
    assert drop_summary(report.dropped) == "busy: 2, corrupt data: 1" and drop_summary({}) == "none"
    stream(stats, clock, 10, 10.0, [5.0])
    assert stats.report().drop_fraction == 0.0, "the share covers the window only"


@pytest.mark.parametrize("change, words", [
    ({"min_rate_hz": 40.0}, "input 30.0 Hz below 40 Hz"),
    ({"max_p95_ms": 8.0}, "processing p95 10.0 ms above 8 ms"),
    ({"max_drop_fraction": 0.1}, "dropped 25% of the inputs (more than 10%)"),
])
def test_each_threshold_crossed_is_a_warning_that_names_it(change, words):
    clock = FakeClock()
    stats = StageStats(clock)
    stream(stats, clock, 30, 30.0, [10.0])
    stats.dropped(BUSY, 10)
    report = stats.report()
    assert assess(report, Thresholds(**{**THRESHOLDS.__dict__, "max_drop_fraction": 0.9})) == (Level.OK, "ok")
    assert assess(report, Thresholds(**{**THRESHOLDS.__dict__, "max_drop_fraction": 0.9, **change})) == \
        (Level.WARN, words)


def test_every_crossed_threshold_is_named_and_zero_or_one_turns_a_check_off():
    clock = FakeClock()
    stats = StageStats(clock)
    stream(stats, clock, 2, 2.0, [900.0])
    stats.dropped("step", 8)
    report = stats.report()
    level, message = assess(report, THRESHOLDS)
    assert level == Level.WARN
    assert message == ("input 2.0 Hz below 5 Hz; processing p95 900.0 ms above 100 ms; "
                       "dropped 80% of the inputs (more than 50%)")
    assert assess(report, Thresholds(min_rate_hz=0.0, max_p95_ms=0.0, max_drop_fraction=1.0, stale_s=2.0)) == \
        (Level.OK, "ok")


def test_no_input_for_the_stale_time_is_an_error_also_before_the_first_input():
    clock = FakeClock()
    stats = StageStats(clock)
    clock.now += 2.5
    assert assess(stats.report(), THRESHOLDS) == (Level.ERROR, "no input for 2.5 s")
    stream(stats, clock, 10, 10.0, [5.0])
    assert assess(stats.report(), THRESHOLDS)[0] == Level.OK
    clock.now += 1.5
    assert assess(stats.report(), THRESHOLDS)[0] == Level.WARN, "a second without input is a low rate"
    clock.now += 1.0
    assert assess(stats.report(), THRESHOLDS) == (Level.ERROR, "no input for 2.5 s")


def test_an_idle_source_is_ok_with_its_reason_and_the_stale_clock_restarts_when_input_is_expected():
    clock = FakeClock()
    stats = StageStats(clock)
    stats.idle("waiting for the graph to be ready")
    clock.now += 30.0
    assert assess(stats.report(), THRESHOLDS) == (Level.OK, "waiting for the graph to be ready")
    stats.expect_input()
    clock.now += 1.0
    report = stats.report()
    assert report.seconds_since_input == pytest.approx(1.0) and assess(report, THRESHOLDS)[0] == Level.WARN
    clock.now += 1.5
    assert assess(stats.report(), THRESHOLDS)[0] == Level.ERROR


def test_the_fields_are_the_same_whatever_the_stage():
    clock = FakeClock()
    camera, faces = StageStats(clock), StageStats(clock)
    faces.faces = 2
    faces.dropped(BUSY)
    camera_fields, face_fields = report_fields(camera.report(), "OpenCV"), report_fields(faces.report(), "mediapipe")
    assert tuple(camera_fields) == tuple(face_fields) == FIELDS
    assert camera_fields["faces_tracked"] == "n/a" and face_fields["faces_tracked"] == "2"
    assert camera_fields["dropped_by_cause"] == "none" and face_fields["dropped_by_cause"] == "busy: 1"
    assert face_fields["frames_dropped"] == "1" and face_fields["backend"] == "mediapipe"
    assert camera_fields["processing_p95_ms"] == "nan"


def test_counts_from_several_threads_are_all_kept():
    stats = StageStats()

    def work() -> None:
        for _ in range(2000):
            stats.received()
            stats.processed(0.001)
            stats.dropped(BUSY)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = stats.report()
    assert (report.received, report.processed, report.dropped) == (8000, 8000, {BUSY: 8000})
    assert stats.received_total == stats.processed_total == 8000


def test_the_slot_and_the_sequence_numbers_say_what_was_skipped():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False and slot.put(2) is True and slot.take(0.1) == 2 and slot.put(3) is False
    gaps = SequenceGaps()
    assert [gaps.observe(b"a", n) for n in (1, 2, 5, 6)] == [0, 0, 2, 0]
    assert gaps.observe(b"b", 9) == 0 and gaps.observe(b"a", None) == 0 and gaps.observe(b"a", 3) == 0
