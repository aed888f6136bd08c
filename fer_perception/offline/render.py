"""Annotated videos with timing diagrams, drawn from the rows of ``frames.csv``.

Each output frame is the input frame with every face's box, id, smoothed
label and AU bars, beside two timing diagrams for one face (the largest in
view): its smoothed AU intensities (0-5) and smoothed emotion probabilities
(0-1) over a window around the current time, which scroll past a cursor at
the current frame. Colours are fixed per AU and per emotion, and the face's
id is drawn in its track colour. ``fer-analyze --render`` and ``fer-render``
both draw from the CSV rows, so a re-render of an edited CSV shows exactly
what the CSV says.
"""
from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fer_perception.annotate import FONT, FaceOverlay, draw_overlays, track_colour
from fer_perception.offline.inputs import InputError, InputFrame
from fer_perception.report import AU_SMOOTHED_COLUMNS, PROBABILITY_SMOOTHED_COLUMNS
from fer_perception.types import AU_NUMBERS, EMOTION_LABELS, BoundingBox

# BGR colours, one per AU (AU_NUMBERS order) and one per emotion (EMOTION_LABELS order).
AU_COLOURS = [(180, 119, 31), (232, 199, 174), (14, 127, 255), (120, 187, 255), (44, 160, 44), (138, 223, 152),
              (40, 39, 214), (150, 152, 255), (189, 103, 148), (213, 176, 197), (75, 86, 140), (148, 156, 196),
              (194, 119, 227), (34, 189, 188), (207, 190, 23)]
EMOTION_COLOURS = [(40, 40, 220), (60, 160, 60), (170, 60, 150), (0, 200, 255), (200, 110, 30), (230, 200, 0),
                   (160, 160, 160)]
BACKGROUND, AXIS, GRID, TEXT = (24, 24, 24), (200, 200, 200), (60, 60, 60), (230, 230, 230)
PANEL_WIDTH, MIN_HEIGHT = 540, 560
PLOT_LEFT, PLOT_RIGHT, LEGEND_WIDTH = 40, 400, 130
# Longer side of the frame in a rendered image: larger frames are scaled down to it (MPEG-4 part 2 encodes at
# most 8191 pixels a side, so an 8000 x 8000 image beside the panel could not be written at all).
MAX_FRAME_SIDE = 3840
RENDER_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v")  # containers OpenCV writes an mp4v stream into
# The columns of frames.csv the renderer reads: a face id and where it is, in every row; numbers or nothing in the
# optional ones.
POSITION_COLUMNS = ("time_s", "x", "y", "width", "height")
REQUIRED_COLUMNS = ("frame", "face_id", *POSITION_COLUMNS)
OPTIONAL_NUMBERS = ("label_confidence", *AU_SMOOTHED_COLUMNS, *PROBABILITY_SMOOTHED_COLUMNS)


@dataclass
class FaceSeries:
    """One face's smoothed AU intensities and emotion probabilities over time (NaN where not estimated)."""

    times: np.ndarray
    aus: np.ndarray
    emotions: np.ndarray


def _number(text: str | None) -> float:
    return float(text) if text not in ("", None) else math.nan


def face_series(rows: list[dict[str, str]]) -> dict[str, FaceSeries]:
    """Per face id, its time series from ``frames.csv`` rows."""
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        grouped[row["face_id"]].append(row)
    series = {}
    for face_id, face_rows in grouped.items():
        face_rows.sort(key=lambda r: float(r["time_s"]))
        series[face_id] = FaceSeries(
            np.array([float(r["time_s"]) for r in face_rows]),
            np.array([[_number(r.get(c, "")) for c in AU_SMOOTHED_COLUMNS] for r in face_rows]),
            np.array([[_number(r.get(c, "")) for c in PROBABILITY_SMOOTHED_COLUMNS] for r in face_rows]))
    return series


class TimingDiagramRenderer:
    """Draws input frames with overlays beside scrolling timing diagrams (see the module docstring)."""

    def __init__(self, rows: list[dict[str, str]], window_s: float = 8.0):
        self.window_s = window_s
        self.rows_by_frame: dict[int, list[dict[str, str]]] = defaultdict(list)
        for row in rows:
            self.rows_by_frame[int(row["frame"])].append(row)
        self.series = face_series(rows)
        self._shown: str | None = None
        self._background: np.ndarray | None = None

    def draw(self, frame: InputFrame, face_id: str | None = None) -> np.ndarray:
        """The output image for one input frame; the diagrams show ``face_id`` where it has rows, else the largest
        face in view (or the last one shown)."""
        height, width = frame.image.shape[:2]
        size = frame_size(width, height)
        image = (frame.image.copy() if size == (width, height)
                 else cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA))
        rows = self.rows_by_frame.get(frame.index, [])
        draw_overlays(image, [self._overlay(row, size[0] / width) for row in rows])
        if face_id in self.series:
            self._shown = face_id
        elif rows:
            self._shown = max(rows, key=lambda r: float(r["width"]) * float(r["height"]))["face_id"]
        height, width = image.shape[:2]
        canvas = self._canvas(width, height)
        canvas[:height, :width] = image
        self._draw_diagrams(canvas[:, width:], frame.stamp_ns / 1e9, len(rows))
        return canvas

    @staticmethod
    def _overlay(row: dict[str, str], scale: float) -> FaceOverlay:
        """What is drawn for ``row``'s face on the input frame scaled by ``scale`` (AUs without a value: no bar)."""
        box = BoundingBox(*(float(row[name]) * scale for name in ("x", "y", "width", "height")))
        label = (f"{row['label_smoothed']} {_number(row.get('label_confidence')):.2f}" if row.get("label_smoothed")
                 else "")
        intensities = np.array([_number(row.get(c, "")) for c in AU_SMOOTHED_COLUMNS])
        return FaceOverlay(row["face_id"], box, label, intensities)

    def _canvas(self, width: int, height: int) -> np.ndarray:
        size = canvas_size(width, height)
        if self._background is None or self._background.shape[:2] != size:
            self._background = np.zeros((*size, 3), np.uint8)
            self._background[:, width:] = BACKGROUND
            self._draw_static(self._background[:, width:])
        return self._background.copy()

    def _charts(self, panel_height: int) -> list[tuple[int, int, float, str, list[str], list]]:
        """(top, bottom, y maximum, title, legend names, colours) of the AU and the emotion chart."""
        middle = 30 + (panel_height - 30) * 3 // 5
        return [(40, middle - 40, 5.0, "AU intensity (0-5)", [f"AU{au}" for au in AU_NUMBERS], AU_COLOURS),
                (middle, panel_height - 40, 1.0, "emotion probability (0-1)", list(EMOTION_LABELS), EMOTION_COLOURS)]

    def _draw_static(self, panel: np.ndarray) -> None:
        for top, bottom, y_max, title, names, colours in self._charts(panel.shape[0]):
            cv2.putText(panel, title, (PLOT_LEFT, top - 8), FONT, 0.45, TEXT, 1, cv2.LINE_AA)
            steps = 5 if y_max > 1 else 4
            for step in range(steps + 1):
                y = round(bottom - (bottom - top) * step / steps)
                cv2.line(panel, (PLOT_LEFT, y), (PLOT_RIGHT, y), GRID if step else AXIS, 1)
                cv2.putText(panel, f"{y_max * step / steps:g}", (4, y + 4), FONT, 0.35, AXIS, 1, cv2.LINE_AA)
            cv2.line(panel, (PLOT_LEFT, top), (PLOT_LEFT, bottom), AXIS, 1)
            seconds = int(self.window_s // 2)
            for offset in range(-seconds, seconds + 1):
                x = int(self._x(offset))
                cv2.line(panel, (x, bottom), (x, bottom + 4), AXIS, 1)
                cv2.putText(panel, f"{offset:+d}" if offset else "0", (x - 8, bottom + 16), FONT, 0.35, AXIS, 1,
                            cv2.LINE_AA)
            cv2.putText(panel, "time (s)", (PLOT_RIGHT + 14, bottom + 16), FONT, 0.35, AXIS, 1, cv2.LINE_AA)
            spacing = min(16, (bottom - top) // len(names))
            for index, (name, colour) in enumerate(zip(names, colours)):
                y = top + 10 + index * spacing
                cv2.line(panel, (PLOT_RIGHT + 10, y - 4), (PLOT_RIGHT + 24, y - 4), colour, 2)
                cv2.putText(panel, name, (PLOT_RIGHT + 28, y), FONT, 0.38, colour, 1, cv2.LINE_AA)

    def _x(self, offset_s: float | np.ndarray) -> np.ndarray:
        """Plot column(s) of a time (array) ``offset_s`` seconds from the cursor."""
        return np.round(PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * (np.asarray(offset_s) / self.window_s + 0.5)
                        ).astype(np.int32)

    def _draw_diagrams(self, panel: np.ndarray, now_s: float, faces_in_view: int) -> None:
        series = self.series.get(self._shown) if self._shown else None
        if series is None:
            cv2.putText(panel, "no face yet", (PLOT_LEFT, 20), FONT, 0.5, TEXT, 1, cv2.LINE_AA)
            return
        title = f"face {self._shown}" + (f" (largest of {faces_in_view})" if faces_in_view > 1 else "")
        cv2.putText(panel, title, (PLOT_LEFT, 20), FONT, 0.55, track_colour(self._shown), 1, cv2.LINE_AA)
        half = self.window_s / 2
        visible = (series.times >= now_s - half) & (series.times <= now_s + half)
        times = series.times[visible]
        current = int(np.searchsorted(series.times, now_s, side="right")) - 1
        xs = self._x(times - now_s)
        for (top, bottom, y_max, _, names, colours), values in zip(self._charts(panel.shape[0]),
                                                                    (series.aus, series.emotions)):
            spacing = min(16, (bottom - top) // len(names))
            for column, colour in enumerate(colours):
                ys = bottom - (bottom - top) * np.clip(values[visible, column], 0, y_max) / y_max
                for run in _finite_runs(xs, ys):
                    cv2.polylines(panel, [run], False, colour, 1, cv2.LINE_AA)
                if current >= 0 and not math.isnan(values[current, column]):
                    cv2.putText(panel, f"{values[current, column]:.2f}", (PLOT_RIGHT + 90, top + 10 + column * spacing),
                                FONT, 0.35, colour, 1, cv2.LINE_AA)
            cursor = int(self._x(0))
            cv2.line(panel, (cursor, top), (cursor, bottom), TEXT, 1)


def canvas_size(width: int, height: int) -> tuple[int, int]:
    """(height, width) of the output image for an input image of ``width`` x ``height``: the image (see
    :func:`frame_size`) beside the diagrams' panel."""
    width, height = frame_size(width, height)
    return max(height, MIN_HEIGHT), width + PANEL_WIDTH


def frame_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) at which an input frame of ``width`` x ``height`` is drawn: its own, or scaled down to
    ``MAX_FRAME_SIDE`` on its longer side."""
    scale = min(1.0, MAX_FRAME_SIDE / max(width, height))
    return round(width * scale), round(height * scale)


def _finite_runs(xs: np.ndarray, ys: np.ndarray) -> list[np.ndarray]:
    """Polyline pieces between missing (NaN) values."""
    finite = ~np.isnan(ys)
    runs, start = [], None
    for index, ok in enumerate([*finite, False]):
        if ok and start is None:
            start = index
        elif not ok and start is not None:
            runs.append(np.stack([xs[start:index], ys[start:index].round().astype(np.int32)], axis=1))
            start = None
    return runs


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a ``frames.csv``; :class:`InputError` naming the file, and the line and column where one is not
    what the renderer reads (an edited CSV, or another file given for it)."""
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                raise InputError(f"{path}: empty, not a frames.csv (no header line)")
            if missing := [name for name in REQUIRED_COLUMNS if name not in reader.fieldnames]:
                raise InputError(f"{path}: not a frames.csv (no column {', '.join(missing)})")
            rows = []
            for row in reader:
                if (problem := _row_problem(row)) is not None:
                    raise InputError(f"{path}: line {reader.line_num}: {problem}")
                rows.append(row)
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: not a CSV file ({error})") from error
    return rows


def _row_problem(row: dict[str, str | None]) -> str | None:
    """Why a ``frames.csv`` row cannot be drawn, or None."""
    if None in row:
        return "more fields than the header"
    if None in row.values():
        return "fewer fields than the header"
    if not row["frame"].strip().isdigit():
        return f"frame {row['frame']!r} is not a frame number"
    for name in POSITION_COLUMNS:
        if not (_is_number(row[name]) and math.isfinite(float(row[name]))):
            return f"{name} {row[name]!r} is not a number"
    for name in OPTIONAL_NUMBERS:
        if row.get(name) and not _is_number(row[name]):
            return f"{name} {row[name]!r} is not a number"
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def render_video(frames: Iterable[InputFrame], rows: list[dict[str, str]], out_path: Path, fps: float,
                 window_s: float = 8.0, total: int | None = None, quiet: bool = True,
                 each: Callable[[InputFrame, np.ndarray], None] | None = None) -> int:
    """Write the annotated video of ``frames`` with ``rows`` (``frames.csv``); returns the frames written.

    The video is written under another name beside ``out_path`` (:func:`partial_path`) and takes its name once
    every frame is in; when ``frames`` raise (an input that breaks off, Ctrl-C) it is removed instead, so that a
    file at ``out_path`` is always a whole video. Unless ``quiet``, a progress bar (of ``total`` frames when known)
    shows rate and ETA. ``each`` is given every drawn image before it is written (``fer-render --show`` plays
    them); what it raises stops the render as a broken input does.
    """
    renderer = TimingDiagramRenderer(rows, window_s)
    frames = tqdm(frames, total=total, unit="frame", desc=f"render {out_path.name}", disable=quiet,
                  dynamic_ncols=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(out_path)
    writer: cv2.VideoWriter | None = None
    width = height = 0
    written = 0
    finished = False
    try:
        for frame in frames:
            image = renderer.draw(frame)
            if each is not None:
                each(frame, image)
            if writer is None:
                height, width = image.shape[:2]
                writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                if not writer.isOpened():
                    raise OSError(f"cannot write video {out_path}")
            elif image.shape[:2] != (height, width):  # images of a folder may differ in size
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            writer.write(image)
            written += 1
        finished = True
    finally:
        if writer is not None:
            writer.release()
            if finished:
                partial.replace(out_path)
            else:
                partial.unlink(missing_ok=True)
    return written


def partial_path(out_path: Path) -> Path:
    """Where :func:`render_video` writes ``out_path`` until it is whole: a hidden name with the same suffix (which
    picks the container)."""
    return out_path.with_name(f".{out_path.stem}.partial{out_path.suffix}")


def output_problem(out_path: Path) -> str | None:
    """Why no video can be rendered to ``out_path``, found by trying before any work (making its folder and a file
    there); None when one can."""
    if out_path.is_dir():
        return "is a folder, not a video file"
    if out_path.suffix.lower() not in RENDER_SUFFIXES:
        return f"is not a video file name (end it in {', '.join(RENDER_SUFFIXES)})"
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot make the folder {out_path.parent}: {error.strerror or error}"
    probe = partial_path(out_path)
    try:
        probe.touch()
        probe.unlink()
    except OSError as error:
        return f"cannot write there: {error.strerror or error}"
    return None
