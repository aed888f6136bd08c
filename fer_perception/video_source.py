"""Frame sources for the camera node and the offline tools, without ROS.

One interface over a webcam (device index or path), a video file and a
folder of images, so the camera node only decides *when* to publish. A
webcam that disappears is reopened with back-off instead of failing; the end
of a file is reported as ``None`` so the caller can loop or stop.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

# Frame rate assumed for a video file that does not state one.
UNKNOWN_VIDEO_RATE = 30.0

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A source that cannot be opened at all (missing file, empty folder)."""


@dataclass
class Frame:
    """One captured frame: BGR pixels and its position on the media timeline."""

    image: np.ndarray
    index: int
    media_time_s: float


class FrameSource(Protocol):
    """What the camera node needs from a source."""

    description: str
    nominal_rate: float  # frames per second the source itself delivers; 0 if unknown
    is_live: bool

    def read(self) -> Frame | None:
        """The next frame, or ``None`` at the end of the media (never for live sources)."""

    def rewind(self) -> None:
        """Start again from the first frame (files and folders)."""

    def close(self) -> None:
        """Release the device or file."""


class VideoFileSource:
    """Frames of a video file, with the file's own frame rate and timeline."""

    is_live = False

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        self.description = f"video file {self.path}"
        self._capture = self._open()
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.nominal_rate = float(fps) if fps and fps > 0 else UNKNOWN_VIDEO_RATE
        self._index = 0

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise SourceError(f"cannot open video file {self.path} (corrupt or unsupported format)")
        return capture

    def read(self) -> Frame | None:
        ok, image = self._capture.read()
        if not ok:
            return None
        frame = Frame(image, self._index, self._media_time(self._index))
        self._index += 1
        return frame

    def _media_time(self, index: int) -> float:
        return index / self.nominal_rate

    def rewind(self) -> None:
        self._capture.release()
        if not self.path.is_file():
            raise SourceError(f"video file {self.path} is gone (removed or renamed while playing)")
        self._capture = self._open()
        self._index = 0

    def close(self) -> None:
        self._capture.release()


class ImageFolderSource:
    """The images of a folder in name order (or one image file), as a video at a chosen rate."""

    is_live = False

    def __init__(self, path: str | Path, rate: float):
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"image or folder not found: {self.path}")
        if self.path.is_file():
            self.files = [self.path]
        else:
            self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {self.path}")
        self.description = f"images {self.path} ({len(self.files)})"
        self.nominal_rate = rate
        self._index = 0

    def read(self) -> Frame | None:
        while self._index < len(self.files):
            path = self.files[self._index]
            index = self._index
            self._index += 1
            try:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            except cv2.error as error:  # raised, not None, for an image past OpenCV's limits (2^30 pixels)
                log.warning("skipping image %s: OpenCV refuses to decode it (%s)", path, error.err)
                continue
            if image is not None:
                return Frame(image, index, index / self.nominal_rate)
            log.warning("skipping unreadable image %s", path)
        return None

    def rewind(self) -> None:
        self._index = 0

    def close(self) -> None:
        pass


class WebcamSource:
    """A V4L2 / OS camera that is reopened with exponential back-off when it disappears.

    ``read`` blocks while the camera is away, retrying until it is back or
    ``stop`` is set by another thread, so a camera unplugged and plugged back
    in resumes the stream.
    """

    is_live = True

    def __init__(self, device: int | str, width: int = 0, height: int = 0,
                 retry_initial_s: float = 0.5, retry_max_s: float = 8.0,
                 stop: threading.Event | None = None):
        self.device = device
        self.description = f"webcam {device}"
        self.width, self.height = width, height
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.nominal_rate = 0.0
        self.reconnects = 0
        self.stop = stop or threading.Event()
        self._capture: cv2.VideoCapture | None = None
        self._index = 0
        self._start = time.monotonic()

    def _try_open(self) -> bool:
        capture = cv2.VideoCapture(self.device)
        if not capture.isOpened():
            capture.release()
            return False
        if self.width and self.height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.nominal_rate = float(fps) if fps and fps > 0 else 0.0
        self._capture = capture
        return True

    def retry_delays(self):
        """The back-off schedule: initial, doubling, capped at ``retry_max_s``."""
        delay = self.retry_initial_s
        while True:
            yield delay
            delay = min(delay * 2.0, self.retry_max_s)

    def read(self) -> Frame | None:
        delays = self.retry_delays()
        while not self.stop.is_set():
            if self._capture is not None:
                ok, image = self._capture.read()
                if ok and image is not None and image.size:
                    frame = Frame(image, self._index, time.monotonic() - self._start)
                    self._index += 1
                    return frame
                log.warning("%s stopped delivering frames; reopening", self.description)
                self._capture.release()
                self._capture = None
                self.reconnects += 1
            if self._try_open():
                log.info("%s opened", self.description)
                continue
            delay = next(delays)
            log.warning("%s unavailable; retrying in %.1f s", self.description, delay)
            self.stop.wait(delay)
        return None

    def rewind(self) -> None:
        pass

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def webcam_present(device: int | str = 0) -> bool:
    """Whether a camera at ``device`` opens and delivers a frame right now."""
    if not Path(f"/dev/video{device}" if isinstance(device, int) else device).exists():
        return False
    capture = cv2.VideoCapture(device)
    try:
        return capture.isOpened() and capture.read()[0]
    finally:
        capture.release()


def parse_device(source: str) -> int | str | None:
    """A webcam device from a source string ("0", "/dev/video2"), else ``None``."""
    if source.isdigit():
        return int(source)
    if source.startswith("/dev/video"):
        return source
    return None


def open_source(source: str, folder_rate: float, demo_clip: Path, width: int = 0, height: int = 0,
                stop: threading.Event | None = None) -> FrameSource:
    """Open ``source``: "auto" (webcam 0 if present, else the demo clip), a device, a video, an image or a folder."""
    if source == "auto":
        source = "0" if webcam_present(0) else str(demo_clip)
    device = parse_device(source)
    if device is not None:
        # A camera asked for by name must be there at start; one that goes away later is waited for.
        if not webcam_present(device):
            raise SourceError(f"no camera found at {source}: nothing there delivers frames (is it plugged in, and "
                              "may this user open it?); source:=auto plays the demo clip instead")
        return WebcamSource(device, width, height, stop=stop)
    path = Path(source).expanduser()
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource(path, folder_rate)
    return VideoFileSource(path)
