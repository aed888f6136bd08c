"""Event compilations: one short video per input with the stretches of it in which events happened.

A session of many minutes holds a few seconds of interest per event; the
compilation lets a researcher review them in a minute, as the social-robotics
video pipeline this package inherits did. Each event is shown with some
context before and after it (``config/offline.yaml``, section
``compilation``), drawn as the annotated video draws frames (boxes, ids,
labels, AU bars and timing diagrams, the diagrams of the event's face), with a
border and the event's name while it is under way. Events whose stretches
overlap (a smile and the happy episode it drives) share one clip, so no
footage is shown twice. Each clip is preceded by a title card listing its
events: face id, kind and detail, start time from the input's first frame,
duration, and the ``event_id`` of ``events.csv``.

The input is read once, in order, and each frame written as it comes, so
memory does not grow with the input. An input without events to compile gets
a single card that says so, so every input's compilation exists and tells.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from fer_perception.annotate import FONT, letterbox, track_colour
from fer_perception.events import EVENT_KINDS
from fer_perception.offline.inputs import InputFrame
from fer_perception.offline.render import BACKGROUND, TEXT, TimingDiagramRenderer, canvas_size, frame_size
from fer_perception.paths import config_path

NS = 1_000_000_000
CARD_LINES = 8  # events listed on one card; more are counted
MUTED = (150, 150, 150)


@dataclass(frozen=True)
class CompilationSettings:
    """How much context each event gets, how long its card shows, and which kinds are compiled."""

    before_s: float
    after_s: float
    card_s: float
    kinds: tuple[str, ...]

    def __post_init__(self) -> None:
        unknown = [kind for kind in self.kinds if kind not in EVENT_KINDS]
        if unknown:
            raise ValueError(f"unknown event kind(s) {', '.join(unknown)}; known: {', '.join(EVENT_KINDS)}")
        if self.before_s < 0 or self.after_s < 0:
            raise ValueError("the context before and after an event must not be negative")
        if not self.card_s > 0:
            raise ValueError("card_s must be above 0")

    @classmethod
    def from_config(cls, path: Path | None = None) -> CompilationSettings:
        """The ``compilation`` section of ``config/offline.yaml`` (or ``path``)."""
        section = yaml.safe_load((path or config_path("offline.yaml")).read_text())["compilation"]
        return cls(float(section["context_before_s"]), float(section["context_after_s"]),
                   float(section["card_s"]), tuple(section["kinds"]))


@dataclass
class Clip:
    """A stretch of the input, from ``begin_s`` to ``end_s``, and the events (``events.json`` records) in it."""

    begin_s: float
    end_s: float
    events: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class Compilation:
    """What a compilation holds: clips and events written, and its frames (cards included)."""

    clips: int
    events: int
    frames: int


def read_events(path: Path) -> list[dict[str, object]]:
    """The records of an ``events.json``."""
    return json.loads(path.read_text())


def _end_s(event: dict[str, object]) -> float:
    return float(event["end_s"]) if event["end_s"] is not None else float(event["start_s"])


def event_clips(events: Iterable[dict[str, object]], settings: CompilationSettings) -> list[Clip]:
    """The clips of the episodes (their offsets, which carry start and end) and instants of the compiled kinds,
    in time order; events whose stretches with context overlap or touch share a clip."""
    chosen = sorted((e for e in events if e["phase"] != "onset" and e["kind"] in settings.kinds),
                    key=lambda e: (float(e["start_s"]), int(e["event_id"])))
    clips: list[Clip] = []
    for event in chosen:
        begin_s, end_s = float(event["start_s"]) - settings.before_s, _end_s(event) + settings.after_s
        if clips and begin_s <= clips[-1].end_s:
            clips[-1].end_s = max(clips[-1].end_s, end_s)
            clips[-1].events.append(event)
        else:
            clips.append(Clip(begin_s, end_s, [event]))
    return clips


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{rest:05.2f}"


def _event_name(event: dict[str, object]) -> str:
    return f"{event['face_id']} {event['kind']}" + (f" {event['detail']}" if event["detail"] else "")


class EventCompiler:
    """Takes an input's frames in order (:meth:`add`) and writes its compilation (see the module docstring)."""

    def __init__(self, events: list[dict[str, object]], rows: list[dict[str, str]], out_path: Path, fps: float,
                 settings: CompilationSettings, title: str, window_s: float = 8.0):
        """``events``: ``events.json`` records; ``rows``: ``frames.csv`` rows; ``title`` heads every card."""
        self.clips = event_clips(events, settings)
        self.out_path = out_path
        self.fps = fps
        self.settings = settings
        self.title = title
        self._renderer = TimingDiagramRenderer(rows, window_s)
        self._size: tuple[int, int] | None = None  # (height, width) of the output
        self._first_s: float | None = None
        self._next = 0  # the first clip not yet over
        self._started: set[int] = set()
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0
        self.compilation: Compilation | None = None  # what was written, once finished

    @property
    def needs_frames(self) -> bool:
        """Whether frames beyond the first matter (not when there is no event to show)."""
        return bool(self.clips)

    def through(self, frames: Iterable[InputFrame]) -> Iterator[InputFrame]:
        """``frames`` unchanged, each added to the compilation on its way (to compile while rendering)."""
        for frame in frames:
            self.add(frame)
            yield frame

    def add(self, frame: InputFrame) -> None:
        """The next input frame: written if it lies in a clip, after that clip's card if it is the clip's first."""
        if self._size is None:
            self._size = canvas_size(frame.image.shape[1], frame.image.shape[0])
            self._first_s = frame.stamp_ns / NS
        time_s = frame.stamp_ns / NS
        while self._next < len(self.clips) and self.clips[self._next].end_s < time_s:
            self._next += 1
        if self._next == len(self.clips) or time_s < self.clips[self._next].begin_s:
            return
        clip = self.clips[self._next]
        if self._next not in self._started:
            self._started.add(self._next)
            self._write_card(self._card_lines(clip, self._next))
        active = [e for e in clip.events if float(e["start_s"]) <= time_s <= _end_s(e)]
        image = self._renderer.draw(frame, str((active or clip.events)[0]["face_id"]))
        self._mark(image, *frame_size(frame.image.shape[1], frame.image.shape[0]), active)
        self._write(image)

    def finish(self) -> Compilation:
        """Close the video, after a card saying there were no events if no clip was written; returns what it
        holds (also as :attr:`compilation`). Without any frame (an input that decoded none) nothing is written."""
        if not self._started and self._size is not None:
            kinds = ", ".join(self.settings.kinds)
            self._write_card([(f"no events to compile ({kinds})", TEXT)])
        self.close()
        written = [self.clips[index] for index in self._started]
        self.compilation = Compilation(len(written), sum(len(clip.events) for clip in written), self.frames)
        return self.compilation

    def close(self) -> None:
        """Release the video file (what was written stays playable); :meth:`finish` does this too."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def _card_lines(self, clip: Clip, index: int) -> list[tuple[str, tuple[int, int, int]]]:
        lines = [(f"clip {index + 1} of {len(self.clips)}: {_clock(clip.begin_s - self._first_s)} to "
                  f"{_clock(clip.end_s - self._first_s)}", MUTED)]
        for event in clip.events[:CARD_LINES]:
            duration = float(event["duration_s"])
            lines.append((f"{_event_name(event)}   at {_clock(float(event['start_s']) - self._first_s)}   "
                          + (f"{duration:.2f} s" if duration else "instant") + f"   (event {event['event_id']})",
                          track_colour(str(event["face_id"]))))
        if len(clip.events) > CARD_LINES:
            lines.append((f"... and {len(clip.events) - CARD_LINES} more (events.csv)", MUTED))
        return lines

    def _write_card(self, lines: list[tuple[str, tuple[int, int, int]]]) -> None:
        """A title card of ``card_s``: the input's name, then ``lines`` in their colours."""
        height, width = self._size
        scale = height / 560
        card = np.full((height, width, 3), BACKGROUND, np.uint8)
        cv2.putText(card, self.title, (round(40 * scale), round(80 * scale)), FONT, 1.0 * scale, TEXT,
                    max(1, round(2 * scale)), cv2.LINE_AA)
        for number, (text, colour) in enumerate(lines):
            cv2.putText(card, text, (round(40 * scale), round((140 + 40 * number) * scale)), FONT, 0.65 * scale,
                        colour, max(1, round(1.5 * scale)), cv2.LINE_AA)
        for _ in range(max(1, round(self.settings.card_s * self.fps))):
            self._write(card)

    @staticmethod
    def _mark(image: np.ndarray, width: int, height: int, active: list[dict[str, object]]) -> None:
        """While events are under way: a border round the input image (drawn ``width`` x ``height``) in the first
        one's face colour, and their names at its bottom left."""
        if not active:
            return
        cv2.rectangle(image, (2, 2), (width - 3, height - 3), track_colour(str(active[0]["face_id"])), 4)
        for number, event in enumerate(reversed(active)):
            y = height - 14 - 24 * number
            text = _event_name(event)
            (text_width, text_height), _ = cv2.getTextSize(text, FONT, 0.6, 1)
            cv2.rectangle(image, (10, y - text_height - 6), (18 + text_width, y + 6), BACKGROUND, -1)
            cv2.putText(image, text, (14, y), FONT, 0.6, track_colour(str(event["face_id"])), 1, cv2.LINE_AA)

    def _write(self, image: np.ndarray) -> None:
        height, width = self._size
        if self._writer is None:
            self.out_path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = cv2.VideoWriter(str(self.out_path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                           (width, height))
            if not self._writer.isOpened():
                raise OSError(f"cannot write video {self.out_path}")
        if image.shape[:2] != (height, width):  # images of a folder may differ in size
            image = letterbox(image, width, height)
        self._writer.write(image)
        self.frames += 1
