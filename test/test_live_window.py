"""The live window: ``make run`` shows the annotated frames where a display is present, q or closing the window stops
the run cleanly, and without a display the run says so once and keeps its terminal lines and files; ``fer-render
--show`` and ``fer-replay --show`` play a recorded session in the same window.

The window's own loop is tested with HighGUI stood in for; everything else runs the real window process on a
virtual X display (Xvfb), with real key presses and a window manager's close request sent through the X server,
and reads back what the window shows.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import pytest

from bag_helpers import video_frames
from conftest import media_path
from fer_perception.live_window import (OPEN, SHOWN, WINDOW_TITLE, FrameFeed, LiveWindow, display_problem,
                                        open_window, run_window, send_frame)
from fer_perception.nodes.recorded_view import RecordedView
from fer_perception.offline import render_cli
from fer_perception.offline.bags import RawBag
from x11_display import VirtualDisplay, Window, virtual_display  # noqa: F401 (a fixture)

QT_BUILD = "  GUI:                           QT5\n    QT:                          YES (ver 5.15.16 )\n"
CLIP = "single_face.mp4"  # 72 frames at 30 fps
RED = (0, 0, 255)


def _frame(colour: tuple[int, int, int], width: int = 320, height: int = 240) -> np.ndarray:
    return np.full((height, width, 3), colour, np.uint8)


def _unused_display() -> str:
    return next(f":{n}" for n in range(900, 1000) if not Path(f"/tmp/.X11-unix/X{n}").exists())


# --- without a display ---

def test_no_display_and_a_headless_opencv_are_said_and_open_no_window(monkeypatch):
    assert "DISPLAY" in display_problem({}, QT_BUILD)
    assert display_problem({"DISPLAY": ":0"}, QT_BUILD) is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, QT_BUILD) is None
    assert "headless" in display_problem({"DISPLAY": ":0"}, "  GUI:                           NONE\n")
    assert display_problem({"DISPLAY": ":0"}) is None, "the installed OpenCV has HighGUI (opencv-contrib-python)"
    monkeypatch.delenv("DISPLAY", raising=False)
    for show in ("auto", "always"):
        window, reason = open_window(show, lambda: None, lambda why: None)
        assert window is None and reason == "no window: no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    assert open_window("never", lambda: None, lambda why: None) == (None, None)


class StandInHighGui:
    """Records what the window loop shows; the user presses ``key`` once ``stop_on`` is on screen, or closes the
    window after ``close_after`` frames."""

    def __init__(self, stop_on: int | None = None, key: int = ord("q"), close_after: int | None = None):
        self.stop_on, self.key, self.close_after = stop_on, key, close_after
        self.shown: list[int] = []
        self.destroyed = False

    def namedWindow(self, title, flags):
        pass

    def resizeWindow(self, title, width, height):
        self.size = (width, height)

    def imshow(self, title, image):
        self.shown.append(int(image[0, 0, 0]))

    def waitKey(self, delay_ms):
        time.sleep(delay_ms / 1000)
        return self.key if self.shown and self.shown[-1] == self.stop_on else -1

    def getWindowProperty(self, title, prop):
        if self.destroyed or (self.close_after is not None and len(self.shown) >= self.close_after):
            return -1.0
        return 1.0

    def destroyWindow(self, title):
        self.destroyed = True


def _feed(values: list[int]) -> tuple[FrameFeed, BinaryIO]:
    """A feed over a real pipe with one grey frame per value written to it, and the pipe's writing end."""
    read_end, write_end = os.pipe()
    feed = FrameFeed(os.fdopen(read_end, "rb"))
    writer = os.fdopen(write_end, "wb")
    for value in values:
        send_frame(writer, np.full((48, 64, 3), value, np.uint8))
    return feed, writer


@pytest.mark.parametrize("key", [ord("q"), ord("Q"), 27])
def test_the_window_loop_shows_the_newest_frames_and_stops_on_q_or_esc(key):
    gui, lines = StandInHighGui(stop_on=30, key=key), []
    feed, writer = _feed([10, 20, 30])
    assert run_window(feed, "t", gui, lines.append) is True
    writer.close()
    assert gui.shown[-1] == 30 and gui.shown == sorted(gui.shown), "newest frames, in order, none twice"
    assert gui.size == (64, 48) and gui.destroyed
    assert lines == [OPEN, f"{SHOWN} {len(gui.shown)}"]


def test_the_window_loop_stops_when_the_window_is_closed_and_ends_with_the_feed():
    gui = StandInHighGui(close_after=1)
    feed, writer = _feed([10, 20])
    assert run_window(feed, "t", gui, lambda line: None) is True
    writer.close()
    assert not gui.destroyed, "a window the user closed is gone already"
    gui, lines = StandInHighGui(), []
    feed, writer = _feed([10, 20, 30])
    writer.close()
    assert run_window(feed, "t", gui, lines.append) is False
    assert gui.shown and gui.shown[-1] == 30 and gui.destroyed
    assert lines[-1] == f"{SHOWN} {len(gui.shown)}"


def test_a_display_that_cannot_be_opened_costs_one_line_and_showing_goes_on(monkeypatch):
    monkeypatch.setenv("DISPLAY", _unused_display())
    failures: list[str] = []
    window = LiveWindow(on_failure=failures.append)
    deadline = time.monotonic() + 20
    while window.failure is None and time.monotonic() < deadline:
        window.show(_frame(RED))
        time.sleep(0.05)
    started = time.monotonic()
    window.show(_frame(RED))  # after the failure: still accepted at once
    assert time.monotonic() - started < 0.1
    window.close()
    assert failures == [window.failure]
    assert "could not connect to display" in window.failure, window.failure
    assert not window.closed.is_set() and not window.opened.is_set()


def test_without_a_display_the_run_says_so_once_and_writes_its_files(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run([sys.executable, "-m", "fer_perception.runner", "--drain", "0.5", "monitor:=true",
                           f"out_dir:={tmp_path}", f"source:={media_path(CLIP)}"],
                          capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = (done.stdout + done.stderr).splitlines()
    said = [line for line in lines if "no window" in line]
    assert len(said) == 1 and said[0].endswith("no window: no display (DISPLAY and WAYLAND_DISPLAY are not set): "
                                               "console lines and files only"), said
    assert "[INFO]" in said[0], "show: auto says it as information, not as a warning"
    assert any("appeared" in line for line in lines) and any("wrote 72 frames" in line for line in lines)


def test_fer_render_show_without_a_display_says_why_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    frames_csv = tmp_path / "frames.csv"
    frames_csv.write_text("frame,face_id,time_s,x,y,width,height\n")
    assert render_cli.main([str(media_path(CLIP)), str(frames_csv), "--show"]) == 1
    assert capsys.readouterr().err == "fer-render: no window: no display (DISPLAY and WAYLAND_DISPLAY are not set)\n"
    assert render_cli.main([str(media_path(CLIP)), str(frames_csv), "--show", "--out", str(tmp_path / "a.mp4"),
                            "--quiet"]) == 0
    assert capsys.readouterr().err.endswith(f"; writing {tmp_path / 'a.mp4'} only\n")
    assert (tmp_path / "a.mp4").is_file()


# --- on a virtual display ---

def _wait(predicate, timeout_s: float, step=lambda: None) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        step()
        time.sleep(0.03)
    return predicate()


@pytest.mark.parametrize("how", ["q", "close"])
def test_the_window_shows_its_frames_and_q_or_closing_it_stops(how, virtual_display, monkeypatch):
    monkeypatch.setenv("DISPLAY", virtual_display.name)
    closed: list[bool] = []
    with LiveWindow(on_close=lambda: closed.append(True)) as window:
        assert _wait(window.opened.is_set, 30, lambda: window.show(_frame(RED))), window.failure
        found = virtual_display.window(WINDOW_TITLE, size=(320, 240))
        assert found is not None, "no window of the frame's size"

        def centre() -> np.ndarray:
            return virtual_display.pixels(found)[60:180, 80:240].reshape(-1, 3).mean(axis=0)

        assert _wait(lambda: np.allclose(centre(), RED, atol=10), 10), f"the window shows {centre()}, not red"
        if how == "q":
            virtual_display.press("q", found)
        else:
            virtual_display.close(found)
        assert _wait(window.closed.is_set, 10, lambda: window.show(_frame(RED)))
    assert closed == [True] and window.failure is None and window.frames_shown >= 1
    assert virtual_display.window(WINDOW_TITLE, timeout_s=0.5) is None


def _run_and_press_q(display: VirtualDisplay, command: list[str], inspect: Callable[[Window], None]) -> str:
    """Start ``command`` on ``display``, wait for its window (of the clip's size), ``inspect`` it and press q there;
    the run's output once it has ended, with exit status 0."""
    raw, _ = video_frames(media_path(CLIP))
    run = subprocess.Popen(command, env=display.environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    try:
        found = display.window(WINDOW_TITLE, timeout_s=120, size=(raw[0].shape[1], raw[0].shape[0]))
        assert found is not None, "no window of the clip's size within 2 min"
        inspect(found)
        display.press("q", found)
        output, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, output[-3000:]
    return output


def test_make_run_shows_the_annotated_frames_and_q_stops_the_run_cleanly(virtual_display, tmp_path):
    def shows_the_video(found: Window) -> None:
        assert _wait(lambda: virtual_display.pixels(found).std() > 20, 10), "the window shows the video, not a blank"

    output = _run_and_press_q(virtual_display, [sys.executable, "-m", "fer_perception.runner", "monitor:=true",
                                                f"out_dir:={tmp_path}", f"source:={media_path(CLIP)}", "loop:=true"],
                              shows_the_video)
    assert "showing the annotated frames in a window: q or closing it stops the run" in output
    assert "[monitor]: window closed: stopping" in output
    wrote = next(line for line in output.splitlines() if "[monitor]: wrote" in line)
    frames, rows = int(wrote.split("wrote ")[1].split()[0]), int(wrote.split(" and ")[1].split()[0])
    assert frames > 0 and rows > 0
    video = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == frames, "the video file is finished"
    assert len((tmp_path / "faces.csv").read_text().splitlines()) == rows + 1
    assert virtual_display.window(WINDOW_TITLE, timeout_s=0.5) is None


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Path:
    """fer-analyze's results of the clip: frames.csv, and a bag of its images with faces, expressions, events."""
    out = tmp_path_factory.mktemp("analysed")
    done = subprocess.run([sys.executable, "-m", "fer_perception.offline.analyze_cli", str(media_path(CLIP)),
                           "--out", str(out), "--bag-out", "--bag-images", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_fer_render_show_plays_the_session_at_its_pace(analysed, virtual_display, monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", virtual_display.name)
    started = time.monotonic()
    assert render_cli.main([str(media_path(CLIP)), str(analysed / "frames.csv"), "--show"]) == 0
    elapsed = time.monotonic() - started
    assert capsys.readouterr().out == "played 72 frames\n"
    assert 71 / 30 <= elapsed < 71 / 30 + 10, f"72 frames at 30 fps played in {elapsed:.2f} s"


def test_closing_fer_render_s_window_stops_it_and_writes_no_partial_video(analysed, virtual_display, monkeypatch,
                                                                          capsys, tmp_path):
    monkeypatch.setenv("DISPLAY", virtual_display.name)
    out = tmp_path / "edited.mp4"

    def close_the_window() -> None:
        found = virtual_display.window(WINDOW_TITLE)
        assert found is not None
        virtual_display.close(found)

    closer = threading.Thread(target=close_the_window)
    closer.start()
    status = render_cli.main([str(media_path(CLIP)), str(analysed / "frames.csv"), "--show", "--out", str(out),
                              "--quiet"])
    closer.join()
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("fer-render: stopped in the window after "), err
    assert err.endswith(f"; {out} not written\n")
    assert list(tmp_path.iterdir()) == [], "no video, no partial file"


def test_the_replay_view_draws_the_bag_s_recorded_results_on_its_images(analysed):
    bag = RawBag(analysed / "results")
    shown: list[np.ndarray] = []
    view = RecordedView(bag, 0.0, 0.0, shown.append)
    view.begin()
    for message in bag.messages():
        view.played(message)
    view.close()
    bag.close()
    raw, _ = video_frames(media_path(CLIP))
    assert view.has_results and len(shown) == len(raw) == 72
    changed = [np.abs(image.astype(int) - frame).max(axis=2) > 40 for image, frame in zip(shown, raw)]
    assert sum(mask.any() for mask in changed) >= 65, "boxes, labels and AU bars on (nearly) every frame"
    bottom_left = [mask[-60:, :200].mean() for mask in changed]
    assert max(bottom_left) > 0.05, "the events are written at the bottom"


def test_fer_replay_show_plays_the_bag_and_q_stops_it(analysed, virtual_display):
    command = [sys.executable, "-m", "fer_perception.nodes.bag_replay", str(analysed / "results"), "--show"]
    done = subprocess.run(command, env=virtual_display.environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "showing /camera/image_raw in a window with its recorded results" in done.stderr
    assert "replay ended after 72 messages" in done.stderr
    output = _run_and_press_q(virtual_display, [*command, "--rate", "0.2"], lambda found: None)
    assert "window closed: stopping" in output
    published = int(output.split("replay ended after ")[1].split()[0])
    assert 0 < published < 72, output
