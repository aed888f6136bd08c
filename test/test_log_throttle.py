"""Warnings are rate-limited per cause: a flood of one fault does not hide another fault's first line."""
from __future__ import annotations

from fer_perception.nodes.log_throttle import CauseThrottle


def test_each_cause_is_logged_once_per_period_and_held_back_lines_are_counted():
    now = [0.0]
    throttle = CauseThrottle(period_s=5.0, clock=lambda: now[0])
    assert throttle.due("unsupported encoding")
    assert not throttle.due("unsupported encoding") and not throttle.due("unsupported encoding")
    assert throttle.due("image size"), "another cause within the period still gets its line"
    now[0] = 5.5
    assert throttle.due("unsupported encoding")
    assert throttle.note("unsupported encoding") == " (2 more since the last line)"
    assert throttle.note("unsupported encoding") == "" and throttle.note("image size") == ""
    assert throttle.logged == {"unsupported encoding", "image size"}
