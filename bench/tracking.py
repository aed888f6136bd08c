"""Tracking quality: identities per real clip, and id switches when two real faces cross.

The crossing sequence moves two faces cut from ``multi_face.jpg`` across a
640x480 canvas in opposite directions, passing each other with partial
overlap (their boxes overlap by up to about a third); an id switch is a frame,
with both faces tracked, where the id nearest a face's true position differs
from the id that face had before.
"""
from __future__ import annotations

import cv2
import numpy as np

from bench.figures import Figure
from bench.frames import media, video_frames
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig

SECTION = "tracking"


def ids_in_clip(name: str) -> int:
    front_end = FaceFrontEnd(FaceFrontEndConfig(deterministic_ids=True))
    ids = set()
    for index, frame in enumerate(video_frames(name)):
        ids |= {f.track_id for f in front_end.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), index).faces}
    front_end.close()
    return len(ids)


def two_faces() -> list[np.ndarray]:
    """Two face patches from the group photo, found with the front end itself."""
    photo = cv2.cvtColor(cv2.imread(str(media("multi_face.jpg"))), cv2.COLOR_BGR2RGB)
    front_end = FaceFrontEnd(FaceFrontEndConfig(min_hits=1))
    faces = sorted(front_end.process(photo, 0).faces, key=lambda f: -f.box.area)[:2]
    front_end.close()
    patches = []
    for face in faces:
        b = face.box
        pad = 0.35 * b.height
        y0, y1 = int(max(b.y - pad, 0)), int(min(b.y + b.height + pad, photo.shape[0]))
        x0, x1 = int(max(b.x - pad, 0)), int(min(b.x + b.width + pad, photo.shape[1]))
        patches.append(cv2.resize(photo[y0:y1, x0:x1], (150, int(150 * (y1 - y0) / (x1 - x0)))))
    return patches


def crossing_switches(frames: int = 90) -> tuple[int, int]:
    """(id switches, frames with both faces tracked) for two faces crossing at mid-sequence."""
    patches = two_faces()
    front_end = FaceFrontEnd(FaceFrontEndConfig(deterministic_ids=True))
    owner: list[str | None] = [None, None]
    switches = both = 0
    for index in range(frames):
        canvas = np.full((480, 640, 3), 90, np.uint8)
        t = index / (frames - 1)
        positions = [(int(20 + t * 450), 60), (int(470 - t * 450), 230)]
        for patch, (x, y) in zip(patches, positions):
            h, w = patch.shape[:2]
            canvas[y:y + h, x:x + w] = patch[: 480 - y, : 640 - x]
        faces = front_end.process(canvas, index * 33_333_333).faces
        if len(faces) == 2:
            both += 1
        for k, (x, y) in enumerate(positions):
            centre = np.array([x + 75, y + patches[k].shape[0] / 2])
            if len(faces) != 2:
                continue
            nearest = min(faces, key=lambda f: np.hypot(f.box.x + f.box.width / 2 - centre[0],
                                                        f.box.y + f.box.height / 2 - centre[1]))
            if owner[k] is not None and nearest.track_id != owner[k]:
                switches += 1
            owner[k] = nearest.track_id
    front_end.close()
    return switches, both


def run(quick: bool) -> list[Figure]:
    switches, both = crossing_switches()
    return [Figure(SECTION, "ids on single_face.mp4 (one person)", ids_in_clip("single_face.mp4"), "", "1", None, 7),
            Figure(SECTION, "ids on noface_face.mov (one person)", ids_in_clip("noface_face.mov"), "", "1", None, 7),
            Figure(SECTION, "ids on no_face.mp4 (nobody)", ids_in_clip("no_face.mp4"), "", "0", None, 7),
            Figure(SECTION, "id switches, two real faces crossing (90 frames)", switches, "", "0", switches == 0, 7,
                   note=f"both faces tracked in {both} of 90 frames")]
