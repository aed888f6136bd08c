"""The files of one analysis: ``frames.csv``, ``events.csv``, ``events.json`` and ``summary.json``.

``frames.csv`` is written row by row while the input is analysed; the
events, the per-face summary and the completion marker at the end.
``summary.json`` is written last, atomically. ``complete: true`` marks a
finished analysis of the whole input; ``complete: false`` (with the
``reason``) one that is not (input truncated or undecodable, stamps going
back, Ctrl-C), and a folder without it one that failed or was killed: a
batch run redoes both.
"""
from __future__ import annotations

import csv
import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from fer_perception.offline.analysis import AnalysedFrame
from fer_perception.report import FACE_COLUMNS, face_row
from fer_perception.types import EMOTION_LABELS, EventPhase, ExpressionEvent

NS = 1_000_000_000
FRAMES_FILE, EVENTS_CSV, EVENTS_JSON, SUMMARY_FILE = "frames.csv", "events.csv", "events.json", "summary.json"
OUTPUT_FILES = (FRAMES_FILE, EVENTS_CSV, EVENTS_JSON, SUMMARY_FILE)
EVENT_COLUMNS = ("event_id", "face_id", "kind", "phase", "detail", "start_s", "end_s", "duration_s", "peak", "mean")
PHASE_NAMES = {EventPhase.ONSET: "onset", EventPhase.OFFSET: "offset", EventPhase.INSTANT: "instant"}
MAX_FRAME_GAP_S = 1.0  # a face is not credited with more time than this for one frame


def event_record(event: ExpressionEvent) -> dict[str, object]:
    """An event as one ``events.csv`` row / ``events.json`` object (times in seconds of the input's clock)."""
    return {"event_id": event.event_id, "face_id": event.face_id, "kind": event.kind,
            "phase": PHASE_NAMES[event.phase], "detail": event.detail, "start_s": round(event.start_ns / NS, 6),
            "end_s": round(event.end_ns / NS, 6) if event.end_ns else None,
            "duration_s": round(event.duration_s, 6), "peak": round(event.peak, 6), "mean": round(event.mean, 6)}


@dataclass
class FacePresence:
    """How long one face was seen, and under which smoothed label."""

    first_s: float
    last_s: float
    frames: int = 0
    seconds: float = 0.0
    emotion_seconds: dict[str, float] = field(default_factory=lambda: {label: 0.0 for label in EMOTION_LABELS})


class AnalysisWriter:
    """Writes one input's analysis into ``out_dir`` as it goes."""

    def __init__(self, out_dir: Path, input_path: Path):
        self.out_dir = out_dir
        self.input_path = input_path
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / SUMMARY_FILE).unlink(missing_ok=True)
        self._frames_file = open(out_dir / FRAMES_FILE, "w", newline="")
        self._rows = csv.DictWriter(self._frames_file, fieldnames=FACE_COLUMNS)
        self._rows.writeheader()
        self.events: list[ExpressionEvent] = []
        self.faces: dict[str, FacePresence] = {}
        self.frames = 0
        self.rows = 0
        self._previous: tuple[float, list[tuple[str, str | None]]] | None = None
        self._gaps: list[float] = []
        self.stamps_went_back = 0  # frames stamped before the previous one (the expression stage restarted there)
        self._first_step_back: tuple[int, float, float] | None = None  # frame index, seconds before and after

    def add(self, analysed: AnalysedFrame) -> None:
        frame, time_s = analysed.frame, analysed.frame.stamp_ns / NS
        expressions = {e.face_id: e for e in analysed.result.expressions}
        seen = []
        for face in analysed.faces.faces:
            expression = expressions.get(face.track_id)
            self._rows.writerow(face_row(frame.source, frame.index, time_s, face, expression))
            label = EMOTION_LABELS[expression.label_smoothed] if expression and expression.emotion is not None else None
            seen.append((face.track_id, label))
            presence = self.faces.setdefault(face.track_id, FacePresence(time_s, time_s))
            presence.last_s, presence.frames = time_s, presence.frames + 1
        self.rows += len(seen)
        self.frames += 1
        if analysed.result.restarted_after_ns is not None:
            self.stamps_went_back += 1
            self._first_step_back = self._first_step_back or (frame.index, analysed.result.restarted_after_ns / NS,
                                                              time_s)
        self.events += analysed.result.events
        self._credit(time_s)
        self._previous = (time_s, seen)

    def _credit(self, now_s: float | None) -> None:
        """Give the previous frame's faces the time until this frame (or a typical frame time at the end)."""
        if self._previous is None:
            return
        then_s, seen = self._previous
        if now_s is not None and now_s > then_s:
            self._gaps.append(now_s - then_s)
            span = min(now_s - then_s, MAX_FRAME_GAP_S)
        else:
            span = self._frame_time()
        for face_id, label in seen:
            presence = self.faces[face_id]
            presence.seconds += span
            if label is not None:
                presence.emotion_seconds[label] += span

    def _frame_time(self) -> float:
        """The typical time between frames (the median step forward; 0 before two frames)."""
        return sorted(self._gaps)[len(self._gaps) // 2] if self._gaps else 0.0

    @property
    def media_seconds(self) -> float:
        """Seconds of the input analysed: its steps forward from frame to frame, plus one frame time for the last
        frame. Steps back (a clock reset, a looped replay) add nothing, so it is never negative."""
        return sum(self._gaps) + self._frame_time()

    def stamps_reason(self) -> str | None:
        """Why the stamps make the analysis suspect, if they went back; None if they never did."""
        if self._first_step_back is None:
            return None
        index, before_s, after_s = self._first_step_back
        return (f"stamps went back {self.stamps_went_back} time(s), first at frame {index} ({before_s:.3f} s -> "
                f"{after_s:.3f} s): every face track was closed there and tracking restarted")

    def finish(self, closing_events: list[ExpressionEvent]) -> None:
        """Close ``frames.csv`` and write the events (the episodes closed at the end included)."""
        self._credit(None)
        self._previous = None
        self._frames_file.close()
        self.events += closing_events
        records = [event_record(e) for e in self.events]
        with open(self.out_dir / EVENTS_CSV, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=EVENT_COLUMNS)
            writer.writeheader()
            writer.writerows(records)
        (self.out_dir / EVENTS_JSON).write_text(json.dumps(records, indent=1) + "\n")

    def write_summary(self, reason: str | None, extra: dict[str, object]) -> dict[str, object]:
        """Write the summary, last and atomically: without a ``reason`` it marks the folder complete, with one it
        says why the results are not (a rerun then analyses the input again). Returns the summary."""
        summary = self._summary(reason, extra)
        temporary = self.out_dir / (SUMMARY_FILE + ".partial")
        temporary.write_text(json.dumps(summary, indent=2) + "\n")
        os.replace(temporary, self.out_dir / SUMMARY_FILE)
        return summary

    def abort(self) -> None:
        """Close the files of an analysis that failed (no summary: the folder stays unfinished)."""
        self._frames_file.close()

    def _summary(self, reason: str | None, extra: dict[str, object]) -> dict[str, object]:
        counts: dict[str, Counter] = defaultdict(Counter)
        for event in self.events:
            if event.phase != EventPhase.OFFSET:
                counts[event.face_id][event.kind] += 1
        faces = {face_id: {"first_seen_s": round(p.first_s, 6), "last_seen_s": round(p.last_s, 6),
                           "frames": p.frames, "time_present_s": round(p.seconds, 3),
                           "time_per_emotion_s": {k: round(v, 3) for k, v in p.emotion_seconds.items()},
                           "event_counts": dict(sorted(counts[face_id].items()))}
                 for face_id, p in self.faces.items()}
        return {"complete": reason is None, "reason": reason, "input": input_signature(self.input_path),
                "frames": self.frames, "face_rows": self.rows, "events": len(self.events),
                "stamps_went_back": self.stamps_went_back, **extra, "faces": faces}


def input_signature(path: Path) -> dict[str, object]:
    """What identifies an input for resuming: its path, size and modification time."""
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    return {"path": str(path.resolve()), "bytes": sum(p.stat().st_size for p in files),
            "modified": max((p.stat().st_mtime_ns for p in files), default=0)}


def is_complete(out_dir: Path, input_path: Path, neutral_range_s: tuple[float, float] | None = None,
                choices: dict[str, object] | None = None) -> bool:
    """Whether ``out_dir`` holds a complete analysis of ``input_path`` as it is now, with the same neutral range
    (another range changes every AU) and the same ``choices`` made instead of the configuration's (detector,
    emotion model, ...: ``AnalysisChoices.made``). An incomplete one (``complete: false``) is not: analysing
    again is the only way a rerun can report, or fix, what was wrong."""
    try:
        summary = json.loads((out_dir / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (summary.get("complete") is True and summary.get("input") == input_signature(input_path)
            and summary.get("neutral_range_s") == (list(neutral_range_s) if neutral_range_s else None)
            and summary.get("choices", {}) == (choices or {})
            and all((out_dir / name).is_file() for name in OUTPUT_FILES))
