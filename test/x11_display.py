"""A virtual X display (Xvfb) for the window tests, and a person's hands on it: find a window, press a key, close
the window as a window manager's close button does, and read back the pixels it shows.

The input goes through the X server itself (XTEST key events, a WM_DELETE_WINDOW
message), through libX11 and libXtst with ctypes; the window is found with
``xwininfo``. Where Xvfb or these are missing the tests that need them skip,
naming what to install.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pytest

MISSING = [name for name, found in (("Xvfb", shutil.which("Xvfb")), ("xwininfo", shutil.which("xwininfo")),
                                    ("libX11", ctypes.util.find_library("X11")),
                                    ("libXtst", ctypes.util.find_library("Xtst"))) if not found]
INSTALL = "apt-get install xvfb x11-utils libxtst6 (scripts/setup.sh does, as root)"

CLIENT_MESSAGE, Z_PIXMAP, ALL_PLANES = 33, 2, 0xFFFFFFFF


class _ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _Event(ctypes.Union):
    _fields_ = [("xclient", _ClientMessage), ("pad", ctypes.c_long * 24)]


class _Image(ctypes.Structure):  # the head of Xlib's XImage
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("xoffset", ctypes.c_int),
                ("format", ctypes.c_int), ("data", ctypes.POINTER(ctypes.c_ubyte)), ("byte_order", ctypes.c_int),
                ("bitmap_unit", ctypes.c_int), ("bitmap_bit_order", ctypes.c_int), ("bitmap_pad", ctypes.c_int),
                ("depth", ctypes.c_int), ("bytes_per_line", ctypes.c_int), ("bits_per_pixel", ctypes.c_int)]


def _libraries() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    x11, xtst = ctypes.CDLL(ctypes.util.find_library("X11")), ctypes.CDLL(ctypes.util.find_library("Xtst"))
    x11.XOpenDisplay.restype, x11.XOpenDisplay.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XDefaultRootWindow.restype, x11.XDefaultRootWindow.argtypes = ctypes.c_ulong, [ctypes.c_void_p]
    x11.XStringToKeysym.restype, x11.XStringToKeysym.argtypes = ctypes.c_ulong, [ctypes.c_char_p]
    x11.XKeysymToKeycode.restype, x11.XKeysymToKeycode.argtypes = ctypes.c_ubyte, [ctypes.c_void_p, ctypes.c_ulong]
    x11.XInternAtom.restype, x11.XInternAtom.argtypes = ctypes.c_ulong, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(_Event)]
    x11.XGetImage.restype = ctypes.POINTER(_Image)
    x11.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                              ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
    x11.XFree.argtypes = [ctypes.c_void_p]
    xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
    xtst.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_ulong]
    return x11, xtst


@dataclass(frozen=True)
class Window:
    """A top-level window on the display: its id and where it is on the screen."""

    id: int
    x: int
    y: int
    width: int
    height: int


class VirtualDisplay:
    """An Xvfb server on a free display number, and the X calls the tests make on it."""

    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        self.server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x1024x24",
                                        "-nolisten", "tcp"], pass_fds=[write_end], stderr=subprocess.DEVNULL)
        os.close(write_end)
        with os.fdopen(read_end) as numbers:
            self.name = f":{numbers.readline().strip()}"
        self.x11, self.xtst = _libraries()

    def environment(self) -> dict[str, str]:
        """This process's environment with DISPLAY set to this server."""
        return {**os.environ, "DISPLAY": self.name}

    def window(self, title: str, timeout_s: float = 30.0, size: tuple[int, int] | None = None) -> Window | None:
        """The window called ``title`` once it is mapped (and ``size`` wide and high, where given: a window can
        appear at a default size before it takes its own), or None after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = subprocess.run(["xwininfo", "-display", self.name, "-name", title], capture_output=True, text=True)
            fields = dict(line.strip().split(": ", 1) for line in found.stdout.splitlines() if ": " in line)
            if found.returncode == 0 and fields.get("Map State") == "IsViewable":
                window_id = int(found.stdout.split("Window id: ")[1].split()[0], 16)
                window = Window(window_id, int(fields["Absolute upper-left X"]), int(fields["Absolute upper-left Y"]),
                                int(fields["Width"]), int(fields["Height"]))
                if size is None or (window.width, window.height) == size:
                    return window
            time.sleep(0.1)
        return None

    def press(self, key: str, window: Window) -> None:
        """Press and release ``key`` (an X keysym name: "q", "Escape") with the pointer over ``window``."""
        with self._connection() as display:
            self.xtst.XTestFakeMotionEvent(display, 0, window.x + window.width // 2, window.y + window.height // 2, 0)
            code = self.x11.XKeysymToKeycode(display, self.x11.XStringToKeysym(key.encode()))
            self.xtst.XTestFakeKeyEvent(display, code, 1, 0)
            self.xtst.XTestFakeKeyEvent(display, code, 0, 0)

    def close(self, window: Window) -> None:
        """Ask ``window`` to close, as a window manager's close button does (WM_DELETE_WINDOW)."""
        with self._connection() as display:
            event = _Event()
            event.xclient.type, event.xclient.window, event.xclient.format = CLIENT_MESSAGE, window.id, 32
            event.xclient.message_type = self.x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
            event.xclient.data[0] = self.x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
            self.x11.XSendEvent(display, window.id, 0, 0, ctypes.byref(event))

    def pixels(self, window: Window) -> np.ndarray:
        """What ``window`` shows on the screen, as a BGR image."""
        with self._connection() as display:
            image = self.x11.XGetImage(display, self.x11.XDefaultRootWindow(display), window.x, window.y,
                                       window.width, window.height, ALL_PLANES, Z_PIXMAP)
            head = image.contents
            assert head.bits_per_pixel == 32, f"a {head.bits_per_pixel}-bit screen"
            data = np.ctypeslib.as_array(head.data, (head.height * head.bytes_per_line,)).copy()
            self.x11.XFree(head.data)
            self.x11.XFree(image)
        rows = data.reshape(window.height, head.bytes_per_line)[:, :window.width * 4]
        return rows.reshape(window.height, window.width, 4)[:, :, :3].copy()

    def stop(self) -> None:
        self.server.terminate()
        self.server.wait(10)

    @contextmanager
    def _connection(self) -> Iterator[int]:
        display = self.x11.XOpenDisplay(self.name.encode())
        assert display, f"cannot open display {self.name}"
        try:
            yield display
        finally:
            self.x11.XFlush(display)
            self.x11.XCloseDisplay(display)


@pytest.fixture
def virtual_display() -> Iterator[VirtualDisplay]:
    """A fresh Xvfb display for one test; the test skips, naming what to install, where :data:`MISSING` names
    anything."""
    if MISSING:
        pytest.skip(f"no virtual display: {', '.join(MISSING)} missing; {INSTALL}")
    display = VirtualDisplay()
    try:
        yield display
    finally:
        display.stop()
