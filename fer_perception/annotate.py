"""Drawing the perception's results onto frames, for the monitor's video, the debug image and offline rendering,
and fitting frames into a video of another size.

Each face gets its box, a caption (id, smoothed label and confidence) and a
panel of AU bars. Text is sized from the frame's shorter side and the face's
height, never under :data:`MIN_TEXT_PX` (readable at 640 x 480, and at 1080p
too). Captions are drawn in the track's colour with a dark outline, and the
AU panel on a dark backing box, so both read on any background. In group
shots the faces are laid out together (:func:`layout`) so that no caption or
panel covers another face where the frame leaves room: the panel goes beside
the face where there is room, else below it within the face's own column;
where fewer rows fit than there are AUs it shows the strongest ones, and
where none fit, none.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from fer_perception.expression_pipeline import FaceExpression
from fer_perception.types import AU_NUMBERS, EMOTION_LABELS, BoundingBox, TrackedFace

# One colour per track, stable for an id (BGR).
PALETTE = [(0, 200, 255), (255, 120, 0), (80, 220, 80), (200, 80, 255), (0, 80, 255), (255, 220, 0)]
FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_TEXT_PX = 10
"""Least height of the AU labels' capitals and digits in pixels; captions are 2 px taller."""
TEXT_SIZE = (20.0, 60.0, 36.0)
"""AU label height: the face's height over the first number, kept within the frame's shorter side over the
other two (10-13 px at 640 x 480, 18-30 px at 1080p)."""
LABEL_COLOUR, OUTLINE_COLOUR, BACKING_COLOUR = (235, 235, 235), (0, 0, 0), (20, 20, 20)
BACKING_OPACITY = 0.7
MAX_AU_VALUE = 5.0
BAR_LENGTH, MIN_BAR_LENGTH = 3.0, 2.0
"""Bar length in label heights (at full intensity): beside the face, and at least, below it."""


@dataclass(frozen=True)
class FaceOverlay:
    """What is drawn for one face: its box, id and label (e.g. ``happy 0.93``, or nothing), and its AU
    intensities (``AU_NUMBERS`` order) where known; an AU without a finite value or whose ``au_estimated`` flag
    is False gets no bar."""

    track_id: str
    box: BoundingBox
    label: str = ""
    au_intensities: np.ndarray | None = None
    au_estimated: np.ndarray | None = None


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle in pixels, ``x1`` and ``y1`` exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    def overlaps(self, other: Rect) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1


@dataclass(frozen=True)
class Placement:
    """Where one face's caption and AU panel go: the caption's lines and rectangle, the panel's rectangle (None
    where not one row fits) and the AUs it shows (indices into ``AU_NUMBERS``), text heights in pixels."""

    box: Rect
    caption: Rect
    caption_lines: tuple[str, ...]
    caption_height: int
    panel: Rect | None
    au_rows: tuple[int, ...]
    au_text_height: int


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled to fit ``width`` x ``height`` with its aspect ratio kept, centred on black."""
    scale = min(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    return canvas


def track_colour(track_id: str) -> tuple[int, int, int]:
    return PALETTE[sum(map(ord, track_id)) % len(PALETTE)]


def draw_faces(image: np.ndarray, faces: Sequence[TrackedFace],
               expressions: dict[str, FaceExpression] | None = None) -> list[Placement]:
    """Draw mesh points, box, caption and, where known, the AU bars of each face onto the BGR image; returns
    where each face's caption and panel went (``faces`` order)."""
    overlays = []
    for face in faces:
        if face.landmarks is not None:
            colour = track_colour(face.track_id)
            for x, y in face.landmarks[::4, :2].astype(int):
                cv2.circle(image, (int(x), int(y)), 1, colour, -1)
        expression = (expressions or {}).get(face.track_id)
        if expression is None:
            overlays.append(FaceOverlay(face.track_id, face.box))
            continue
        label = (f"{EMOTION_LABELS[expression.label_smoothed]} {expression.confidence:.2f}"
                 if expression.emotion is not None else "")
        overlays.append(FaceOverlay(face.track_id, face.box, label, expression.au_smoothed,
                                    expression.aus.estimated))
    return draw_overlays(image, overlays)


def draw_overlays(image: np.ndarray, overlays: Sequence[FaceOverlay]) -> list[Placement]:
    """Draw every face's box, caption and AU panel, laid out together (:func:`layout`); returns the layout."""
    placements = layout(overlays, image.shape[1], image.shape[0])
    thickness = max(2, round(min(image.shape[:2]) / 360))
    for overlay, placement in zip(overlays, placements):
        colour = track_colour(overlay.track_id)
        box, caption, text_height = placement.box, placement.caption, placement.caption_height
        cv2.rectangle(image, (box.x0, box.y0), (box.x1 - 1, box.y1 - 1), colour, thickness)
        for line, text in enumerate(placement.caption_lines):
            draw_text(image, text, (caption.x0 + 1, caption.y0 + 1 + text_height + line * _line_pitch(text_height)),
                      text_height, colour)
        if placement.panel is not None:
            _draw_panel(image, placement, overlay.au_intensities, colour)
    return placements


def draw_text(image: np.ndarray, text: str, origin: tuple[int, int], height: int,
              colour: tuple[int, int, int]) -> None:
    """``text`` with its capitals ``height`` pixels tall, baseline at ``origin``, in ``colour`` with a dark
    outline."""
    scale, thickness = _font(height)
    cv2.putText(image, text, origin, FONT, scale, OUTLINE_COLOUR, thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, FONT, scale, colour, thickness, cv2.LINE_AA)


def layout(overlays: Sequence[FaceOverlay], width: int, height: int) -> list[Placement]:
    """Captions and AU panels for faces in a ``width`` x ``height`` frame, none covering another face's box,
    caption or panel where the frame leaves room.

    Captions come first: on one line above the box, else below it, else on two lines (id, label), either side
    aligned with the box's left or right edge. Then the panels, face by face: right of the box, left of it, or
    below it within its column, whichever shows the most rows less the rows it takes from the faces still to
    come; a panel with fewer rows than AUs shows the strongest.
    """
    side = min(width, height)
    boxes = [_rect(overlay.box, width, height) for overlay in overlays]
    text_heights = [_text_height(box.y1 - box.y0, side) for box in boxes]
    captions: list[tuple[Rect, tuple[str, ...]]] = []
    for index, overlay in enumerate(overlays):
        others = _without(boxes, index) + [rect for rect, _ in captions]
        captions.append(_place_caption(overlay, text_heights[index] + 2, boxes[index], others, width, height))
    fixed = boxes + [rect for rect, _ in captions]
    shown = [_shown_aus(overlay) for overlay in overlays]
    columns = [_panel_columns(text_heights[i], boxes[i], captions[i][0]) for i in range(len(overlays))]
    panels: list[Rect] = []
    placements = []
    for index, overlay in enumerate(overlays):
        obstacles = _without(fixed, index) + panels
        coming = range(index + 1, len(overlays))
        before = [_best_rows(j, columns, shown, text_heights, _without(fixed, j) + panels, width, height)
                  for j in coming]
        best: tuple[int, Rect | None, int] = (0, None, 0)  # score, panel, rows
        for column in columns[index]:
            panel, rows = _fit(column, len(shown[index]), text_heights[index], obstacles, width, height)
            if panel is None:
                continue
            after = [_best_rows(j, columns, shown, text_heights, _without(fixed, j) + panels + [panel], width,
                                height) for j in coming]
            score = rows - (sum(before) - sum(after))
            if best[1] is None or score > best[0]:
                best = (score, panel, rows)
        _, panel, rows = best
        rows_shown = shown[index]
        if rows < len(rows_shown):  # the compact form: the strongest AUs, in AU order
            rows_shown = sorted(sorted(rows_shown, key=lambda au: -float(overlay.au_intensities[au]))[:rows])
        if panel is not None:
            panels.append(panel)
        placements.append(Placement(boxes[index], *captions[index], text_heights[index] + 2, panel,
                                    tuple(rows_shown), text_heights[index]))
    return placements


def _without(rects: list[Rect], index: int) -> list[Rect]:
    return rects[:index] + rects[index + 1:]


@cache
def _font(height: int) -> tuple[float, int]:
    """Font scale and stroke thickness for capitals ``height`` pixels tall."""
    thickness = max(1, round(height / 14))
    return cv2.getFontScaleFromHeight(FONT, height, thickness), thickness


def _text_height(face_height: int, side: int) -> int:
    """AU label height for a face ``face_height`` pixels tall in a frame whose shorter side is ``side``."""
    per_face, low, high = TEXT_SIZE
    lowest = max(MIN_TEXT_PX, side / low)
    return round(min(max(face_height / per_face, lowest), max(lowest, side / high)))


def _gap(text_height: int) -> int:
    return max(2, text_height // 3)


def _line_pitch(text_height: int) -> int:
    return text_height + 2 * _gap(text_height)


def _rect(box: BoundingBox, width: int, height: int) -> Rect:
    x0, y0 = min(max(0, int(box.x)), width - 1), min(max(0, int(box.y)), height - 1)
    return Rect(x0, y0, max(x0 + 1, min(width, int(box.x + box.width))),
                max(y0 + 1, min(height, int(box.y + box.height))))


def _place_caption(overlay: FaceOverlay, text_height: int, box: Rect, others: list[Rect], width: int,
                   height: int) -> tuple[Rect, tuple[str, ...]]:
    """The caption's rectangle and lines: the first of the forms and places :func:`layout` lists that lies in
    the frame clear of ``others``, else one line above the box (inside its top at the frame's top edge)."""
    forms = [(f"{overlay.track_id} {overlay.label}".strip(),)]
    if overlay.label:
        forms.append((overlay.track_id, overlay.label))
    scale, thickness = _font(text_height)
    gap = _gap(text_height)
    candidates = []
    for lines in forms:
        text_width = max(cv2.getTextSize(line, FONT, scale, thickness)[0][0] for line in lines)
        size_x, size_y = text_width + 4, text_height + (len(lines) - 1) * _line_pitch(text_height) + 2 * gap
        for y in (box.y0 - gap - size_y, box.y1 + gap):
            for x in (box.x0, box.x1 - size_x):
                candidates.append((Rect(x, y, x + size_x, y + size_y), lines))
    for rect, lines in candidates:
        if rect.x0 >= 0 and rect.y0 >= 0 and rect.x1 <= width and rect.y1 <= height and \
                not any(rect.overlaps(other) for other in others):
            return rect, lines
    rect, lines = candidates[0]
    x = min(max(0, rect.x0), max(0, width - (rect.x1 - rect.x0)))
    y = rect.y0 if rect.y0 >= 0 else box.y0
    return Rect(x, y, x + rect.x1 - rect.x0, y + rect.y1 - rect.y0), lines


def _shown_aus(overlay: FaceOverlay) -> list[int]:
    """Indices of the AUs with a value to show."""
    if overlay.au_intensities is None:
        return []
    known = np.isfinite(np.asarray(overlay.au_intensities, float))
    if overlay.au_estimated is not None:
        known &= np.asarray(overlay.au_estimated, bool)
    return [int(i) for i in np.flatnonzero(known)]


@cache
def _panel_size(text_height: int) -> tuple[int, int, int, int]:
    """Label width, bar length, row pitch and padding of a panel with labels ``text_height`` pixels tall."""
    scale, thickness = _font(text_height)
    (label_width, _), _ = cv2.getTextSize("AU00", FONT, scale, thickness)
    return label_width, round(BAR_LENGTH * text_height), text_height + _gap(text_height), max(2, text_height // 4)


def _panel_columns(text_height: int, box: Rect, caption: Rect) -> list[tuple[int, int, int]]:
    """Where a face's panel may go, as (left, top, width): right of the box, left of it, below it (and its
    caption, when that is below) no wider than the box."""
    label_width, bar_length, _, pad = _panel_size(text_height)
    full_width = pad + label_width + pad + bar_length + pad
    gap = _gap(text_height)
    below = max(box.y1, caption.y1 if caption.y0 >= box.y1 else 0) + gap
    columns = [(box.x1 + gap, box.y0, full_width), (box.x0 - gap - full_width, box.y0, full_width)]
    if box.x1 - box.x0 >= pad + label_width + pad + MIN_BAR_LENGTH * text_height + pad:
        columns.append((box.x0, below, min(full_width, box.x1 - box.x0)))
    return columns


def _fit(column: tuple[int, int, int], count: int, text_height: int, obstacles: list[Rect], width: int,
         height: int) -> tuple[Rect | None, int]:
    """The panel of up to ``count`` rows in ``column``, from its top down to the first obstacle or the frame's
    edge, and its rows (None and 0 where not one fits)."""
    x, y, panel_width = column
    if x < 0 or x + panel_width > width or not count:
        return None, 0
    _, _, pitch, pad = _panel_size(text_height)
    gap = _gap(text_height)
    room = height - y
    for other in obstacles:
        if other.x0 < x + panel_width and x < other.x1 and other.y1 > y:
            room = min(room, other.y0 - y)
    rows = min(count, (room - 2 * pad + gap) // pitch)
    return (Rect(x, y, x + panel_width, y + 2 * pad + rows * pitch - gap), rows) if rows > 0 else (None, 0)


def _best_rows(index: int, columns: list[list[tuple[int, int, int]]], shown: list[list[int]],
               text_heights: list[int], obstacles: list[Rect], width: int, height: int) -> int:
    """The most rows face ``index``'s panel could show among ``obstacles``."""
    return max((_fit(column, len(shown[index]), text_heights[index], obstacles, width, height)[1]
                for column in columns[index]), default=0)


def _draw_panel(image: np.ndarray, placement: Placement, intensities: np.ndarray,
                colour: tuple[int, int, int]) -> None:
    """The AU rows of ``placement`` on a dark backing box: label, then a bar whose length is intensity / 5."""
    panel, text_height = placement.panel, placement.au_text_height
    label_width, _, pitch, pad = _panel_size(text_height)
    region = image[panel.y0:panel.y1, panel.x0:panel.x1]
    region[:] = (region * (1.0 - BACKING_OPACITY) + np.array(BACKING_COLOUR) * BACKING_OPACITY).astype(np.uint8)
    scale, thickness = _font(text_height)
    bar_x0, bar_x1 = panel.x0 + pad + label_width + pad, panel.x1 - pad
    for row, au in enumerate(placement.au_rows):
        top = panel.y0 + pad + row * pitch
        cv2.putText(image, f"AU{AU_NUMBERS[au]}", (panel.x0 + pad, top + text_height), FONT, scale, LABEL_COLOUR,
                    thickness, cv2.LINE_AA)
        filled = round((bar_x1 - bar_x0) * min(max(float(intensities[au]), 0.0), MAX_AU_VALUE) / MAX_AU_VALUE)
        if filled > 0:
            cv2.rectangle(image, (bar_x0, top), (bar_x0 + filled - 1, top + text_height - 1), colour, -1)
        cv2.rectangle(image, (bar_x0, top), (bar_x1 - 1, top + text_height - 1), LABEL_COLOUR, 1)
