"""Tabular and one-line text views of per-face results, shared by the monitor and the offline tools."""
from __future__ import annotations

from datetime import datetime

from fer_perception.expression_pipeline import FaceExpression
from fer_perception.types import AU_NUMBERS, EMOTION_LABELS, EventPhase, ExpressionEvent, TrackedFace

AU_COLUMNS = tuple(f"AU{au:02d}_r" for au in AU_NUMBERS)
AU_SMOOTHED_COLUMNS = tuple(f"{column}_smoothed" for column in AU_COLUMNS)
PROBABILITY_COLUMNS = tuple(f"p_{label}" for label in EMOTION_LABELS)
PROBABILITY_SMOOTHED_COLUMNS = tuple(f"{column}_smoothed" for column in PROBABILITY_COLUMNS)
FACE_COLUMNS = ("source", "frame", "time_s", "face_id", "x", "y", "width", "height", "confidence",
                "yaw", "pitch", "roll", "quality", *AU_COLUMNS, *AU_SMOOTHED_COLUMNS, "au_calibration",
                "eye_closure_left", "eye_closure_right", "eye_closure_left_smoothed", "eye_closure_right_smoothed",
                *PROBABILITY_COLUMNS, *PROBABILITY_SMOOTHED_COLUMNS, "label", "label_smoothed", "label_confidence",
                "valence", "arousal", "valence_smoothed", "arousal_smoothed")
"""Columns of ``frames.csv`` (fer-analyze) and ``faces.csv`` (monitor); docs/offline_analysis.md explains each."""


def face_row(source: str, frame: int, time_s: float, face: TrackedFace,
             expression: FaceExpression | None = None) -> dict[str, str]:
    """One CSV row (``FACE_COLUMNS``) for a face in frame ``frame`` of ``source`` at ``time_s`` (image stamp).

    AU and eye columns stay empty where the value was not estimated; expression columns stay empty
    when the expression stage skipped the frame (live) or had no emotion for the face.
    """
    box, pose = face.box, face.head_pose
    row = {"source": source, "frame": str(frame), "time_s": f"{time_s:.6f}", "face_id": face.track_id,
           "x": f"{box.x:.1f}", "y": f"{box.y:.1f}", "width": f"{box.width:.1f}", "height": f"{box.height:.1f}",
           "confidence": f"{face.detection_confidence:.3f}", "yaw": f"{pose.yaw:.1f}",
           "pitch": f"{pose.pitch:.1f}", "roll": f"{pose.roll:.1f}", "quality": f"{face.quality.score:.3f}"}
    if expression is None:
        return row
    units = expression.aus
    for raw, smoothed, value, value_smoothed, estimated in zip(AU_COLUMNS, AU_SMOOTHED_COLUMNS, units.intensity,
                                                               expression.au_smoothed, units.estimated):
        if estimated:
            row[raw], row[smoothed] = f"{value:.3f}", f"{value_smoothed:.3f}"
    row["au_calibration"] = f"{units.calibration:.3f}"
    if units.eyes_estimated:
        row.update(eye_closure_left=f"{units.left_eye_closure:.3f}", eye_closure_right=f"{units.right_eye_closure:.3f}",
                   eye_closure_left_smoothed=f"{expression.eye_closure_smoothed[0]:.3f}",
                   eye_closure_right_smoothed=f"{expression.eye_closure_smoothed[1]:.3f}")
    if expression.emotion is not None:
        row.update(zip(PROBABILITY_COLUMNS, (f"{p:.4f}" for p in expression.emotion)))
        row.update(zip(PROBABILITY_SMOOTHED_COLUMNS, (f"{p:.4f}" for p in expression.emotion_smoothed)))
        row.update(label=EMOTION_LABELS[expression.label], label_smoothed=EMOTION_LABELS[expression.label_smoothed],
                   label_confidence=f"{expression.confidence:.3f}", valence=f"{expression.valence:.3f}",
                   arousal=f"{expression.arousal:.3f}", valence_smoothed=f"{expression.valence_smoothed:.3f}",
                   arousal_smoothed=f"{expression.arousal_smoothed:.3f}")
    return row


EPOCH_STAMP_S = 1e8
"""Stamps above this many seconds are wall-clock times (a camera's capture stamps), below it media times."""


def stamp_text(time_s: float) -> str:
    """A stamp as a person reads it: local time of day for wall-clock stamps, seconds into the media otherwise."""
    if time_s >= EPOCH_STAMP_S:
        return datetime.fromtimestamp(time_s).strftime("%H:%M:%S.%f")[:-3]
    return f"{time_s:.3f} s"


def face_line(time_s: float, face: TrackedFace, expression: FaceExpression | None = None) -> str:
    """A human-readable status line for the console."""
    box, pose = face.box, face.head_pose
    line = (f"[{stamp_text(time_s)}] {face.track_id}: box {box.width:.0f}x{box.height:.0f} at ({box.x:.0f},{box.y:.0f})"
            f"  yaw {pose.yaw:+.0f}° pitch {pose.pitch:+.0f}°  quality {face.quality.score:.2f}")
    if expression is None:
        return line
    if expression.emotion is not None:
        line += (f"  {EMOTION_LABELS[expression.label_smoothed]} {expression.confidence:.2f}"
                 f"  valence {expression.valence_smoothed:+.2f} arousal {expression.arousal_smoothed:+.2f}")
    active = [f"AU{au}={value:.1f}" for au, value, estimated
              in zip(AU_NUMBERS, expression.au_smoothed, expression.aus.estimated) if estimated and value >= 1.0]
    if expression.aus.eyes_estimated:
        active.append(f"eyes {max(expression.eye_closure_smoothed):.2f} closed")
    return line + "  " + " ".join(active)


EPISODE_SENTENCES = {
    "smile": "smiled", "brow_raise": "raised their brows", "frown": "frowned", "jaw_drop": "dropped their jaw",
}
PEAK_NAMES = {"smile": "AU12", "brow_raise": "AU1+2", "frown": "AU4", "jaw_drop": "AU26"}


def event_sentence(event: ExpressionEvent) -> str:
    """A readable line for an event, the way a behaviour layer would report it."""
    who = event.face_id
    if event.kind == "face_appeared":
        return f"{who} appeared"
    if event.kind == "face_lost":
        return f"{who} left"
    if event.kind == "blink":
        return f"{who} blinked ({event.duration_s * 1000:.0f} ms)"
    if event.phase == EventPhase.ONSET:
        what = {"emotion": f"looks {event.detail}", "eyes_closed": "closed their eyes"}.get(
            event.kind, f"started: {event.kind}")
        return f"{who} {what}" + (f" ({event.detail})" if event.kind == "smile" else "")
    if event.kind == "emotion":
        return f"{who} looked {event.detail} for {event.duration_s:.1f} s (peak {event.peak:.2f})"
    if event.kind == "eyes_closed":
        return f"{who} eyes closed {event.duration_s:.1f} s"
    detail = f", {event.detail}" if event.detail else ""
    return (f"{who} {EPISODE_SENTENCES.get(event.kind, event.kind)} for {event.duration_s:.1f} s "
            f"(peak {PEAK_NAMES.get(event.kind, 'value')} {event.peak:.1f}{detail})")
