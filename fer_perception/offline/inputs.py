"""What ``fer-analyze`` can read, as one stream of stamped frames per input.

An input is a video file, an image file, a folder of images or a rosbag2 bag.
Stamps come from the input itself: the video's timeline, the bag's image
headers, or the image's position in its folder at a nominal rate. A folder
that holds videos or bags (rather than images) is a batch: it expands into
one input per file or bag.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_perception.offline.bags import BagError, ImageBag, bag_folder, is_bag
from fer_perception.video_source import (IMAGE_SUFFIXES, UNKNOWN_VIDEO_RATE, VIDEO_SUFFIXES, ImageFolderSource,
                                         SourceError, VideoFileSource)

NS = 1_000_000_000
# Containers that index every frame, so the frame count they declare is exact; for the others (mkv, webm, mpeg)
# OpenCV estimates it from the duration, and fewer frames read proves nothing.
INDEXED_VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi")
# Frames an indexed video may declare but not show: an edit list hides the encoder's lead-in (no_face.mp4
# declares 98 frames and shows 95). More missing than this is a truncated or corrupt video.
HIDDEN_VIDEO_FRAMES = 5


class InputError(RuntimeError):
    """An input that cannot be analysed (missing, corrupt, truncated, no image topic); the message says why."""


@dataclass(frozen=True)
class InputFrame:
    """One frame of an input: BGR pixels, its index in the input, its header, and the file it came from."""

    image: np.ndarray
    index: int
    stamp_ns: int
    source: str
    frame_id: str


class AnalysisInput:
    """One input of ``fer-analyze``: its frames in order, with a frame count for progress bars."""

    def __init__(self, path: Path, topic: str | None, folder_rate: float, frame_id: str):
        """``topic``: a bag's image topic (None: its only one; :attr:`topic` then names it); ``folder_rate`` (Hz) stamps images of a folder;
        ``frame_id`` is that of videos and images (a bag's images keep their own). The CLIs default the last
        two to the camera node's (``camera.yaml``)."""
        self.path = path
        self.topic = topic
        self.folder_rate = folder_rate
        self.frame_id = frame_id
        self._bag_images: int | None = None
        # Why frames are missing in the last pass: the first undecodable image, or where a bag's storage broke off.
        self.decode_error: str | None = None
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if is_bag(path):
            self.kind, self.path = "bag", bag_folder(path)
            self._choose_bag_topic()
        elif path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
            self.kind = "images"
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            self.kind = "video"
        else:
            raise InputError(f"{path}: not a video ({', '.join(VIDEO_SUFFIXES)}), an image, a folder of images "
                             "or a rosbag2 bag")
        if self.path.is_file() and self.path.stat().st_size == 0:  # else said as "corrupt or unsupported"
            raise InputError(f"{path}: empty file (0 bytes)")

    def _choose_bag_topic(self) -> None:
        """Settle the bag's image topic now (the only one, or ``topic``), so a bad choice fails up front."""
        try:
            bag = ImageBag(self.path, self.topic)
        except BagError as error:
            raise InputError(str(error)) from error
        bag.close()
        self.topic, self._bag_images = bag.topic, bag.message_count

    @property
    def name(self) -> str:
        """A name for this input's output folder."""
        return self.path.stem if self.path.is_file() else self.path.name

    def frames(self) -> Iterator[InputFrame]:
        """Every frame in order; raises :class:`InputError` if the input cannot be read. A video cut short or a bag
        whose storage breaks off part-way ends early instead, with the frames before the break; :meth:`shortfall`
        then says why."""
        try:
            if self.kind == "bag":
                yield from self._bag_frames()
            elif self.kind == "video":
                yield from self._video_frames()
            else:
                yield from self._image_frames()
        except (SourceError, BagError) as error:
            raise InputError(str(error)) from error

    def whole_frames(self) -> Iterator[InputFrame]:
        """Every frame, as :meth:`frames`, then :class:`InputError` if they were not the whole input (see
        :meth:`shortfall`): for a consumer whose output must not be finished on part of the input."""
        read = 0
        for frame in self.frames():
            read += 1
            yield frame
        if (reason := self.shortfall(read)) is not None:
            raise InputError(f"{self.path}: {reason}")

    def frame_count(self) -> int | None:
        """Frames the input holds, if it says (for progress bars; estimated for videos without a frame index)."""
        try:
            if self.kind == "bag":
                return self._bag_images
            if self.kind == "video":
                capture = cv2.VideoCapture(str(self.path))
                count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
                capture.release()
                return count if count > 0 else None
            return len(ImageFolderSource(self.path, self.folder_rate).files)
        except (SourceError, BagError):
            return None

    def declared_frames(self) -> int | None:
        """Frames the input says it holds where that count is exact (bags, images, indexed videos), else None."""
        if self.kind == "video" and self.path.suffix.lower() not in INDEXED_VIDEO_SUFFIXES:
            return None
        return self.frame_count()

    def shortfall(self, frames_read: int) -> str | None:
        """Why ``frames_read``, the frames a whole pass over the input gave, are not all of it; None if they are.

        A pass gives fewer frames than declared without raising when a video is cut short (OpenCV just stops)
        or images do not decode (they are skipped): the results then miss part of the input.
        """
        declared = self.declared_frames()
        hidden = HIDDEN_VIDEO_FRAMES if self.kind == "video" else 0
        if frames_read and (declared is None or frames_read >= declared - hidden):
            return None
        counted = f"{frames_read} of {declared}" if declared is not None else str(frames_read)
        if self.kind == "video":
            return f"{counted} frames decoded (truncated or corrupt video)"
        if self.kind == "bag":
            cause = self.decode_error or "fewer images than its metadata declares"
        else:
            cause = "corrupt, or not images" + (f"; the first: {self.decode_error}" if self.decode_error else "")
        return f"{counted} images decoded ({cause})"

    def nominal_rate(self) -> float:
        """Frames per second of the input: the video's, the folder rate, or a bag's median stamp spacing."""
        if self.kind == "video":
            source = VideoFileSource(self.path)
            source.close()
            return source.nominal_rate
        if self.kind == "images":
            return self.folder_rate
        bag = ImageBag(self.path, self.topic)
        try:
            stamps = bag.recorded_times(100)
        finally:
            bag.close()
        spacing = float(np.median(np.diff(stamps))) if len(stamps) > 1 else 0.0
        return NS / spacing if spacing > 0 else UNKNOWN_VIDEO_RATE

    def _bag_frames(self) -> Iterator[InputFrame]:
        bag = ImageBag(self.path, self.topic)
        broken_off: str | None = None
        try:
            for index, item in enumerate(bag.images()):
                yield InputFrame(item.image, index, item.stamp_ns, f"{self.path.name}:{bag.topic}", item.frame_id)
        except BagError as error:
            broken_off = str(error)
        finally:
            self.decode_error = broken_off or bag.first_decode_error
            bag.close()

    def _video_frames(self) -> Iterator[InputFrame]:
        source = VideoFileSource(self.path)
        try:
            while (frame := source.read()) is not None:
                yield InputFrame(frame.image, frame.index, round(frame.media_time_s * NS), self.path.name,
                                 self.frame_id)
        finally:
            source.close()

    def _image_frames(self) -> Iterator[InputFrame]:
        source = ImageFolderSource(self.path, self.folder_rate)
        expected = 0  # the index of the next image file; the source skips the files that do not decode
        self.decode_error = None
        try:
            while (frame := source.read()) is not None:
                self._note_skipped(source.files[expected:frame.index])
                expected = frame.index + 1
                yield InputFrame(frame.image, frame.index, round(frame.media_time_s * NS),
                                 source.files[frame.index].name, self.frame_id)
            self._note_skipped(source.files[expected:])
        finally:
            source.close()

    def _note_skipped(self, files: list[Path]) -> None:
        """Name the first image file that did not decode, so the reason says which one to look at."""
        if files and self.decode_error is None:
            self.decode_error = files[0].name


def expand_inputs(paths: list[Path]) -> list[Path]:
    """The inputs named on the command line, with batch folders (of videos or bags) expanded, in name order."""
    expanded: list[Path] = []
    for path in paths:
        if path.is_dir() and not is_bag(path):
            members = sorted(p for p in path.iterdir() if is_bag(p) and p.is_dir()
                             or p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if members:
                expanded += members
                continue
        expanded.append(path)
    return expanded
