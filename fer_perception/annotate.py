"""Drawing the perception's results onto frames, for the monitor's video and offline rendering, and fitting frames
into a video of another size."""
from __future__ import annotations

import cv2
import numpy as np

from fer_perception.expression_pipeline import FaceExpression
from fer_perception.types import AU_NUMBERS, EMOTION_LABELS, BoundingBox, TrackedFace

# One colour per track, stable for an id (BGR).
PALETTE = [(0, 200, 255), (255, 120, 0), (80, 220, 80), (200, 80, 255), (0, 80, 255), (255, 220, 0)]
FONT = cv2.FONT_HERSHEY_SIMPLEX
BAR_WIDTH, BAR_HEIGHT = 40, 7


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


def draw_faces(image: np.ndarray, faces: list[TrackedFace],
               expressions: dict[str, FaceExpression] | None = None) -> None:
    """Draw box, id, mesh points and, where known, label and AU bars of each face onto the BGR image."""
    for face in faces:
        colour = track_colour(face.track_id)
        if face.landmarks is not None:
            for x, y in face.landmarks[::4, :2].astype(int):
                cv2.circle(image, (int(x), int(y)), 1, colour, -1)
        expression = (expressions or {}).get(face.track_id)
        caption = face.track_id
        if expression is not None and expression.emotion is not None:
            caption += f" {EMOTION_LABELS[expression.label_smoothed]} {expression.confidence:.2f}"
        corner = draw_box(image, face.box, caption, colour)
        if expression is not None:
            draw_au_bars(image, expression.au_smoothed, expression.aus.estimated, corner, colour)


def draw_box(image: np.ndarray, box: BoundingBox, caption: str, colour: tuple[int, int, int]) -> tuple[int, int]:
    """A face box with its caption above it; returns the point just right of its top-right corner."""
    x0, y0 = int(box.x), int(box.y)
    x1, y1 = int(box.x + box.width), int(box.y + box.height)
    cv2.rectangle(image, (x0, y0), (x1, y1), colour, 2)
    cv2.putText(image, caption, (x0, max(12, y0 - 6)), FONT, 0.5, colour, 1, cv2.LINE_AA)
    return x1 + 4, y0


def draw_au_bars(image: np.ndarray, intensities: np.ndarray, estimated: np.ndarray, origin: tuple[int, int],
                 colour: tuple[int, int, int]) -> None:
    """One bar per estimated AU (length = intensity / 5, in ``AU_NUMBERS`` order), labelled with its number."""
    x, y = origin
    for au, value, estimated in zip(AU_NUMBERS, intensities, estimated):
        if not estimated:
            continue
        cv2.putText(image, str(au), (x, y + BAR_HEIGHT), FONT, 0.3, colour, 1, cv2.LINE_AA)
        cv2.rectangle(image, (x + 16, y), (x + 16 + BAR_WIDTH, y + BAR_HEIGHT), (60, 60, 60), 1)
        cv2.rectangle(image, (x + 16, y), (x + 16 + int(BAR_WIDTH * min(value, 5.0) / 5.0), y + BAR_HEIGHT),
                      colour, -1)
        y += BAR_HEIGHT + 2
