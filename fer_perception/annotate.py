"""Drawing the perception's results onto frames, for the monitor's video and offline rendering."""
from __future__ import annotations

import cv2
import numpy as np

from fer_perception.types import TrackedFace

# One colour per track, stable for an id (BGR).
PALETTE = [(0, 200, 255), (255, 120, 0), (80, 220, 80), (200, 80, 255), (0, 80, 255), (255, 220, 0)]


def track_colour(track_id: str) -> tuple[int, int, int]:
    return PALETTE[sum(map(ord, track_id)) % len(PALETTE)]


def draw_faces(image: np.ndarray, faces: list[TrackedFace]) -> None:
    """Draw box, id, head pose and mesh points of each face onto the BGR ``image`` in place."""
    for face in faces:
        colour = track_colour(face.track_id)
        box = face.box
        top_left = (int(box.x), int(box.y))
        cv2.rectangle(image, top_left, (int(box.x + box.width), int(box.y + box.height)), colour, 2)
        if face.landmarks is not None:
            for x, y in face.landmarks[::4, :2].astype(int):
                cv2.circle(image, (int(x), int(y)), 1, colour, -1)
        pose = face.head_pose
        label = f"{face.track_id}  yaw {pose.yaw:+.0f} pitch {pose.pitch:+.0f}"
        cv2.putText(image, label, (top_left[0], max(12, top_left[1] - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    colour, 1, cv2.LINE_AA)
