"""fer-analyze on inputs that give empty, partial or suspect results, and on Ctrl-C: real files and real bags.

Each such input must say why in one line (``fer-analyze: <input>: <reason>``), leave ``complete: false`` in its
``summary.json``, make the run exit non-zero, and be analysed again by a rerun rather than skipped.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bag_helpers import BAG_START_NS, NS, video_frames, write_image_bag
from conftest import REPO, media_path
from fer_perception.offline.analyze_cli import EXIT_INTERRUPTED
from fer_perception.offline.analyze_cli import main as analyze
from fer_perception.offline.inputs import AnalysisInput
from fer_perception.offline.results import is_complete
from fer_perception.report import FACE_COLUMNS

CLIP = "single_face.mp4"


def analysed_with_a_reason(input_path: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    """Analyse ``input_path`` twice: each run exits 1 with one line naming the input and the reason (so the rerun
    analysed it again rather than skipping it). Returns its ``summary.json`` and the reason."""
    reasons = []
    for _ in range(2):
        assert analyze([str(input_path), "--out", str(out), "--quiet"]) == 1
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("fer-analyze: ")]
        assert len(lines) == 1 and lines[0].startswith(f"fer-analyze: {input_path}: "), lines
        reasons.append(lines[0].removeprefix(f"fer-analyze: {input_path}: "))
    assert reasons[0] == reasons[1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["reason"] == reasons[0] and not summary["interrupted"]
    assert not is_complete(out, input_path)
    return summary, reasons[0]


def boxes(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """The ISO media boxes from ``start`` to ``end``: type, offset, size (32-bit sizes only)."""
    while start < end:
        size, kind = struct.unpack_from(">I4s", data, start)
        assert size >= 8, "64-bit or open-ended box"
        yield kind, start, size
        start += size


def web_optimised(mp4: bytes) -> bytes:
    """``mp4`` with its index (``moov``) before its media data, as web ("faststart") files have it, so that a copy
    cut short still opens; every chunk offset (``stco``) moves by the index's size."""
    top = {kind: (start, size) for kind, start, size in boxes(mp4, 0, len(mp4))}
    (index_at, index_size), (media_at, _) = top[b"moov"], top[b"mdat"]
    assert media_at < index_at and index_at + index_size == len(mp4), "expected the index last"
    index = bytearray(mp4[index_at:])

    def shift(start: int, end: int) -> None:
        for kind, at, size in boxes(index, start, end):
            if kind in (b"trak", b"mdia", b"minf", b"stbl"):
                shift(at + 8, at + size)
            elif kind == b"stco":
                count = struct.unpack_from(">I", index, at + 12)[0]
                offsets = struct.unpack_from(f">{count}I", index, at + 16)
                struct.pack_into(f">{count}I", index, at + 16, *(offset + index_size for offset in offsets))

    shift(8, index_size)
    return mp4[:media_at] + bytes(index) + mp4[media_at:index_at]


def test_a_video_cut_in_half_is_incomplete(tmp_path, capsys):
    whole = web_optimised(media_path(CLIP).read_bytes())
    clip = tmp_path / "cut.mp4"
    clip.write_bytes(whole[: len(whole) // 2])
    summary, reason = analysed_with_a_reason(clip, tmp_path / "out", capsys)
    assert 0 < summary["frames"] < 60 and summary["frames_expected"] == 72
    assert reason == f"{summary['frames']} of 72 frames decoded (truncated or corrupt video)"
    with open(tmp_path / "out" / "frames.csv", newline="") as handle:
        assert 0 < len(list(csv.DictReader(handle))) <= summary["frames"]


def test_an_edit_list_s_hidden_frames_are_not_a_truncation():
    clip = AnalysisInput(media_path("no_face.mp4"), None, 10.0, "camera")  # declares 98 frames, shows 95
    assert clip.declared_frames() == 98
    assert clip.shortfall(95) is None and "truncated" in clip.shortfall(60)


def test_an_undecodable_jpeg_fails(tmp_path, capsys):
    image = tmp_path / "photo.jpg"
    image.write_bytes(os.urandom(20_000))
    summary, reason = analysed_with_a_reason(image, tmp_path / "out", capsys)
    assert summary["frames"] == 0 and summary["frames_expected"] == 1
    assert reason == "0 of 1 images decoded (corrupt, or not images)"


def test_a_bag_of_an_unsupported_encoding_fails(tmp_path, capsys):
    frames, fps = video_frames(media_path(CLIP))
    write_image_bag(tmp_path / "bayer.mcap", frames[:10], fps, encoding="bayer_rggb8")
    summary, reason = analysed_with_a_reason(tmp_path / "bayer", tmp_path / "out", capsys)
    assert summary["frames"] == 0 and summary["frames_expected"] == 10
    assert reason.startswith("0 of 10 images decoded (unsupported encoding 'bayer_rggb8'")


def test_stamps_going_back_are_reported_and_durations_stay_positive(tmp_path, capsys):
    frames, fps = video_frames(media_path(CLIP))
    half = len(frames) // 2  # the camera's clock is set back 10 s halfway through the recording
    stamps = [BAG_START_NS + round(i * NS / fps) - (10 * NS if i >= half else 0) for i in range(len(frames))]
    write_image_bag(tmp_path / "reset.mcap", frames, fps, header_stamps=stamps)
    summary, reason = analysed_with_a_reason(tmp_path / "reset", tmp_path / "out", capsys)
    assert summary["stamps_went_back"] == 1 and summary["frames"] == summary["frames_expected"] == len(frames)
    assert reason.startswith(f"stamps went back 1 time(s), first at frame {half} ")
    assert summary["realtime_factor"] > 0, "media time counts the steps forward only"
    events = json.loads((tmp_path / "out" / "events.json").read_text())
    assert events and all(event["duration_s"] >= 0 for event in events)
    assert all(face["time_present_s"] >= 0 for face in summary["faces"].values())


def test_ctrl_c_stops_a_batch_promptly_and_leaves_readable_outputs(tmp_path):
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(media_path("noface_face.mov"), inputs / f"{name}.mov")
    # A session of its own, so that the SIGINT goes to every process of the group, as a terminal's Ctrl-C does.
    run = subprocess.Popen([sys.executable, "-m", "fer_perception.offline.analyze_cli", str(inputs), "--out", str(out),
                            "--jobs", "2", "--quiet"], cwd=REPO, start_new_session=True, stderr=subprocess.PIPE,
                           text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("*/frames.csv")) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(run.pid, signal.SIGINT)
        interrupted_at = time.monotonic()
        _, errors = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == EXIT_INTERRUPTED, errors
    assert "Traceback" not in errors, "a process of the group took the SIGINT as a KeyboardInterrupt"
    assert time.monotonic() - interrupted_at < 15, "the first Ctrl-C must stop the batch promptly"
    batch = json.loads((out / "batch_summary.json").read_text())
    statuses = {Path(r["input"]).name: r for r in batch["results"]}
    assert set(statuses) == {"a.mov", "b.mov", "c.mov"}
    assert {r["status"] for r in statuses.values()} <= {"done", "interrupted", "not_started"}
    stopped = [r for r in statuses.values() if r["status"] == "interrupted"]
    assert stopped and all(r["frames"] < 169 for r in stopped), "workers must stop at the next frame"
    assert batch["interrupted"] == len(stopped)
    for name, record in statuses.items():
        if record["status"] == "not_started":
            assert f"fer-analyze: {record['input']}: not started" in errors
            continue
        folder = Path(record["out_dir"])
        with open(folder / "frames.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert all(len(row) == len(FACE_COLUMNS) and None not in row.values() for row in rows), name
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["frames"] == record["frames"] and summary["face_rows"] == len(rows)
        if record["status"] == "interrupted":
            assert summary["complete"] is False and summary["interrupted"] is True
            assert f"fer-analyze: {record['input']}: interrupted (Ctrl-C) after {record['frames']} of 169" in errors
            assert not is_complete(folder, Path(record["input"]))
