"""A window showing the newest annotated frame, in a process of its own so that it never stalls or ends a run.

``make run`` (the monitor), ``fer-render --show`` and ``fer-replay --show``
hand frames to :class:`LiveWindow`, which returns at once: a sender thread
passes only the newest frame on (frames that come while the window is busy
are replaced, never queued), scaled down to fit a screen, through a pipe to a
child process (``python -m fer_perception.live_window``) that shows it with
OpenCV's HighGUI (Qt, in the opencv-contrib-python wheel). A process, not a
thread, because Qt's X11 plug-in aborts the whole process when the display
cannot be opened (a stale ``DISPLAY``, Wayland without XWayland) and Qt
objects made on a worker thread print warnings at exit: here a window that
cannot open costs one log line and the run goes on without it. Pressing q
(or Esc) or closing the window ends the child with the line ``closed``; the
parent then sets :attr:`LiveWindow.closed` and calls ``on_close``, with which
the owner stops as it would on Ctrl-C.
"""
from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from typing import BinaryIO, Protocol

import cv2
import numpy as np

from fer_perception.latest_slot import LatestSlot

WINDOW_TITLE = "fer_perception (q: stop)"
MAX_SIZE = (1280, 800)  # (width, height): larger frames are scaled down to fit before they are sent
STOP_KEYS = (ord("q"), ord("Q"), 27)  # q, or Esc
KEY_WAIT_MS = 15  # how long the child waits for a key (and lets the window redraw) between frames
HEADER = struct.Struct("<III")  # height, width, channels of the frame that follows
OPEN, CLOSED, SHOWN = "open", "closed", "shown"  # the child's lines: first frame up, user closed, frames shown
CLOSE_TIMEOUT_S = 5.0
KEPT_ERROR_LINES = 10  # of the window process's stderr (Qt's messages); the first one says why it failed
SHOW_CHOICES = ("auto", "always", "never")
"""When to show the window: where a display is present, always (a warning where it cannot), never."""


def display_problem(environ: Mapping[str, str] = os.environ, build_info: str | None = None) -> str | None:
    """Why no window can be shown here, or None: no display in the environment, or an OpenCV without HighGUI
    (the ``-headless`` wheels). A display that is set but cannot be opened shows only when the window tries."""
    gui = re.search(r"^\s*GUI:\s*(\S+)", build_info or cv2.getBuildInformation(), re.MULTILINE)
    if gui is None or gui.group(1).upper() == "NONE":
        return "this OpenCV has no HighGUI (a headless build)"
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    return None


def open_window(show: str, on_close: Callable[[], None],
                on_failure: Callable[[str], None]) -> tuple[LiveWindow | None, str | None]:
    """The window a ``show`` setting asks for (one of :data:`SHOW_CHOICES`), or None and why not (None for
    ``never``): ``auto`` and ``always`` open one where :func:`display_problem` finds none; the caller says the
    reason, as a note for ``auto`` and as a warning for ``always``."""
    if show == "never":
        return None, None
    if (problem := display_problem()) is not None:
        return None, f"no window: {problem}"
    return LiveWindow(on_close, on_failure), None


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled down, aspect kept, to fit ``width`` x ``height``; as it is where it fits."""
    scale = min(width / image.shape[1], height / image.shape[0])
    if scale >= 1:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class LiveWindow:
    """The parent's side: :meth:`show` frames, :meth:`close` at the end (also as a context manager).

    ``closed`` is set (and ``on_close`` called, from a thread of the window's) when the user closed the window or
    pressed q; ``failure`` says why the window could not be shown or went away (``on_failure`` is told it once).
    ``opened`` is set once the first frame is on screen; ``frames_shown`` counts the frames the window drew, known
    after :meth:`close`.
    """

    def __init__(self, on_close: Callable[[], None] = lambda: None,
                 on_failure: Callable[[str], None] = lambda reason: None, title: str = WINDOW_TITLE):
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.failure: str | None = None
        self.frames_shown = 0
        self._on_close, self._on_failure = on_close, on_failure
        self._closing = False
        self._errors: list[str] = []
        self._slot: LatestSlot[np.ndarray] = LatestSlot()
        self._process = subprocess.Popen([sys.executable, "-m", __name__, title], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._threads = [threading.Thread(target=target, name=f"live_window_{target.__name__.strip('_')}",
                                          daemon=True)
                         for target in (self._send, self._collect_errors, self._watch)]
        for thread in self._threads:
            thread.start()

    def show(self, image: np.ndarray) -> None:
        """Hand over the newest frame (BGR or grey, uint8); never blocks. Not copied: do not draw on it later."""
        self._slot.put(image)

    def close(self) -> None:
        """Let the window draw the frame it was last given, then close it and wait for its process."""
        self._closing = True
        self._slot.close()
        self._threads[0].join(CLOSE_TIMEOUT_S)
        try:
            self._process.wait(CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for thread in self._threads[1:]:
            thread.join(CLOSE_TIMEOUT_S)

    def __enter__(self) -> LiveWindow:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _send(self) -> None:
        pipe = self._process.stdin
        try:
            while (image := self._slot.take()) is not None:
                send_frame(pipe, fit(image, *MAX_SIZE))
        except OSError:
            pass  # the window's process has ended: _watch says why
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    def _collect_errors(self) -> None:
        for line in self._process.stderr:  # read to the end, so that the process never blocks on a full pipe
            if (text := line.decode(errors="replace").strip()) and len(self._errors) < KEPT_ERROR_LINES:
                self._errors.append(text)

    def _watch(self) -> None:
        closed_by_user = False
        for line in self._process.stdout:
            word, _, count = line.decode(errors="replace").strip().partition(" ")
            if word == OPEN:
                self.opened.set()
            elif word == CLOSED:
                closed_by_user = True
            elif word == SHOWN and count.isdigit():
                self.frames_shown = int(count)
        status = self._process.wait()
        self._slot.close()  # show() now only replaces the held frame; nothing takes it
        self._threads[1].join(CLOSE_TIMEOUT_S)
        if closed_by_user:
            self.closed.set()
            self._on_close()
        elif status != 0 or not self._closing:
            cause = self._errors[0] if self._errors else f"its process ended with status {status}"
            self.failure = f"the window could not be shown: {cause}"
            self._on_failure(self.failure)


# --- the window's process ---

class HighGui(Protocol):
    """The HighGUI functions the window uses (``cv2`` itself; tests pass a stand-in)."""

    def namedWindow(self, title: str, flags: int) -> None: ...
    def resizeWindow(self, title: str, width: int, height: int) -> None: ...
    def imshow(self, title: str, image: np.ndarray) -> None: ...
    def waitKey(self, delay_ms: int) -> int: ...
    def getWindowProperty(self, title: str, prop: int) -> float: ...
    def destroyWindow(self, title: str) -> None: ...


def send_frame(pipe: BinaryIO, image: np.ndarray) -> None:
    """Write ``image`` (uint8, BGR or grey) to the window's pipe: :data:`HEADER`, then the pixels."""
    image = np.ascontiguousarray(image)
    pipe.write(HEADER.pack(image.shape[0], image.shape[1], image.shape[2] if image.ndim == 3 else 1))
    pipe.write(image.data)
    pipe.flush()


class FrameFeed:
    """Frames read from a pipe (:data:`HEADER`, then the pixels) on a thread; :meth:`take` gives the newest."""

    def __init__(self, pipe: BinaryIO):
        self._pipe = pipe
        self._slot: LatestSlot[np.ndarray] = LatestSlot()
        self.ended = threading.Event()
        threading.Thread(target=self._read, name="frame_feed", daemon=True).start()

    def take(self, timeout_s: float) -> np.ndarray | None:
        """The newest frame not taken yet, waiting up to ``timeout_s``; None if none came or the feed has ended
        (:attr:`ended`)."""
        return self._slot.take(timeout_s)

    def _read(self) -> None:
        try:
            while len(header := self._pipe.read(HEADER.size)) == HEADER.size:
                height, width, channels = HEADER.unpack(header)
                data = self._pipe.read(height * width * channels)
                if len(data) < height * width * channels:
                    break  # the parent went away mid-frame
                self._slot.put(np.frombuffer(data, np.uint8).reshape(height, width, channels))
        finally:
            self.ended.set()
            self._slot.close()


def run_window(feed: FrameFeed, title: str, highgui: HighGui = cv2, report: Callable[[str], None] = print) -> bool:
    """Show ``feed``'s frames until it ends (False) or the user presses a stop key or closes the window (True).
    The window opens with the first frame, at its size; ``report`` gets :data:`OPEN` once that frame is up and
    :data:`SHOWN` with the count at the end."""
    shown = 0
    try:
        while True:
            image = feed.take(0.0 if shown else KEY_WAIT_MS / 1000)
            if image is None and feed.ended.is_set():
                return False
            if image is not None:
                if shown == 0:
                    highgui.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
                    highgui.resizeWindow(title, image.shape[1], image.shape[0])
                highgui.imshow(title, image)
                shown += 1
            if not shown:
                continue
            key = highgui.waitKey(KEY_WAIT_MS)
            if image is not None and shown == 1:
                report(OPEN)
            if key >= 0 and key & 0xFF in STOP_KEYS:
                return True
            if highgui.getWindowProperty(title, cv2.WND_PROP_VISIBLE) < 1:
                return True
    finally:
        report(f"{SHOWN} {shown}")
        if shown and highgui.getWindowProperty(title, cv2.WND_PROP_VISIBLE) >= 0:
            highgui.destroyWindow(title)
            highgui.waitKey(1)


def main(argv: list[str] | None = None) -> None:
    """The window's process: frames on stdin, its lines on stdout; Ctrl-C is the parent's to handle (it closes
    the pipe). It ends with ``os._exit``: the feed's thread may still be reading the pipe, which the interpreter
    cannot finalize under it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    title = (argv if argv is not None else sys.argv[1:] or [WINDOW_TITLE])[0]

    def report(line: str) -> None:
        print(line, flush=True)

    if run_window(FrameFeed(sys.stdin.buffer), title, cv2, report):
        report(CLOSED)
    os._exit(0)


if __name__ == "__main__":
    main()
