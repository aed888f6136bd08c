"""Tabular and one-line text views of per-face results, shared by the monitor and the offline tools."""
from __future__ import annotations

from fer_perception.types import TrackedFace

FACE_COLUMNS = ("time_s", "face_id", "x", "y", "width", "height", "confidence", "yaw", "pitch", "roll",
                "quality")


def face_row(time_s: float, face: TrackedFace) -> dict[str, object]:
    """One CSV row (``FACE_COLUMNS``) for a face at ``time_s`` (the source image stamp, seconds)."""
    box, pose = face.box, face.head_pose
    return {"time_s": f"{time_s:.6f}", "face_id": face.track_id,
            "x": f"{box.x:.1f}", "y": f"{box.y:.1f}", "width": f"{box.width:.1f}", "height": f"{box.height:.1f}",
            "confidence": f"{face.detection_confidence:.3f}", "yaw": f"{pose.yaw:.1f}",
            "pitch": f"{pose.pitch:.1f}", "roll": f"{pose.roll:.1f}", "quality": f"{face.quality.score:.3f}"}


def face_line(time_s: float, face: TrackedFace) -> str:
    """A human-readable status line for the console."""
    box, pose = face.box, face.head_pose
    return (f"[{time_s:10.3f}] {face.track_id}: box {box.width:.0f}x{box.height:.0f} at ({box.x:.0f},{box.y:.0f})"
            f"  conf {face.detection_confidence:.2f}  yaw {pose.yaw:+.0f}° pitch {pose.pitch:+.0f}°"
            f" roll {pose.roll:+.0f}°  quality {face.quality.score:.2f}")
