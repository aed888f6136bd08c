"""fer-analyze, fer-render and fer-replay on inputs that give empty, partial or suspect results, and on Ctrl-C: real
files and real bags.

Each such input must say why in one line (``fer-analyze: <input>: <reason>``), leave ``complete: false`` in its
``summary.json``, make the run exit non-zero, and be analysed again by a rerun rather than skipped. fer-render then
writes no video at all, and fer-replay exits 1.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from bag_helpers import BAG_START_NS, NS, video_frames, write_image_bag
from conftest import REPO, media_path
from fer_perception.offline.analyze_cli import EXIT_INTERRUPTED, EXIT_TERMINATED
from fer_perception.offline.analyze_cli import main as analyze
from fer_perception.offline.bags import add_connection, open_writer, typestore
from fer_perception.offline.inputs import AnalysisInput
from fer_perception.offline.render import partial_path
from fer_perception.offline.render_cli import main as render
from fer_perception.offline.results import is_complete
from fer_perception.report import FACE_COLUMNS

CLIP = "single_face.mp4"
BAG_FRAMES = 6  # frames of the bags made here: enough to decode, few enough to stay quick


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


def cut_in_half(folder: Path) -> Path:
    """The clip, with its index first, cut in half: it opens, and the frames of its first half decode."""
    whole = web_optimised(media_path(CLIP).read_bytes())
    clip = folder / "cut.mp4"
    clip.write_bytes(whole[: len(whole) // 2])
    return clip


def test_a_video_cut_in_half_is_incomplete(tmp_path, capsys):
    clip = cut_in_half(tmp_path)
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
    assert reason == "0 of 1 images decoded (corrupt, or not images; the first: photo.jpg)"


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


def stopped_once(module_args: list[str], ready: Callable[[], bool], signum: int = signal.SIGINT
                 ) -> tuple[int, str, float]:
    """Run ``python -m MODULE_ARGS`` from the repository in a session of its own, send ``signum`` to its whole
    process group (as a terminal's Ctrl-C does) once ``ready()`` holds (60 s at most), and wait for it to end: its
    exit status, its stderr, and the seconds it took to end after the signal."""
    run = subprocess.Popen([sys.executable, "-m", *module_args], cwd=REPO, start_new_session=True,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(run.pid, signum)
        signalled = time.monotonic()
        _, errors = run.communicate(timeout=60)
        return run.returncode, errors, time.monotonic() - signalled
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)


def test_ctrl_c_stops_a_batch_promptly_and_leaves_readable_outputs(tmp_path):
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(media_path("noface_face.mov"), inputs / f"{name}.mov")
    status, errors, seconds = stopped_once(["fer_perception.offline.analyze_cli", str(inputs), "--out", str(out),
                                            "--jobs", "2", "--quiet"], lambda: bool(list(out.glob("*/frames.csv"))))
    assert status == EXIT_INTERRUPTED, errors
    assert "Traceback" not in errors, "a process of the group took the SIGINT as a KeyboardInterrupt"
    assert seconds < 15, "the first Ctrl-C must stop the batch promptly"
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


def clip_frames() -> list[np.ndarray]:
    return video_frames(media_path(CLIP))[0]


def image_bag(path: Path, damage: Callable[[object], object] | None = None) -> Path:
    """A bag folder of ``BAG_FRAMES`` real frames (``path``: name.mcap or name.db3), each message ``damage``d."""
    write_image_bag(path, clip_frames()[:BAG_FRAMES], 30.0, damage=damage)
    return path.with_suffix("")


def cut_short(folder: Path) -> Path:
    """``folder``'s bag with its storage file cut in half, as a recorder killed mid-write or a copy cut short
    leaves it."""
    storage = next(p for p in folder.iterdir() if p.suffix in (".mcap", ".db3"))
    data = storage.read_bytes()
    storage.write_bytes(data[: len(data) // 2])
    return folder


def broken_off(folder: Path) -> Path:
    """``folder``'s mcap bag with the first record of its last chunk claiming a length of 1 TiB: the bag opens (its
    index is whole) and breaks off where reading reaches that chunk, as storage damaged in the middle does."""
    storage = folder / f"{folder.name}.mcap"
    data = bytearray(storage.read_bytes())
    at, last_chunk = 8, 0  # records after the magic: opcode (1 byte), length (8), content
    while at < len(data) - 8:
        opcode, length = struct.unpack_from("<BQ", data, at)
        last_chunk = at + 9 if opcode == 0x06 else last_chunk
        at += 9 + length
    # A chunk: start and end times, size (8 bytes each), CRC (4), compression name (length, text), records' length.
    compression = struct.unpack_from("<I", data, last_chunk + 28)[0]
    struct.pack_into("<BQ", data, last_chunk + 32 + compression + 8, 0x05, 1 << 40)
    storage.write_bytes(data)
    return folder


def chatter_bag(path: Path) -> Path:
    """A bag with one ``std_msgs/String`` topic and no images."""
    writer = open_writer(path)
    string = typestore().types["std_msgs/msg/String"]
    writer.write(add_connection(writer, "/chatter", "std_msgs/msg/String"), BAG_START_NS,
                 typestore().serialize_cdr(string(data="hello"), "std_msgs/msg/String"))
    writer.close()
    return path.with_suffix("")


def random_db3(folder: Path) -> Path:
    """Random bytes as a bag's ``.db3`` beside a real ``metadata.yaml``."""
    bag = image_bag(folder / "random.db3")
    (bag / "random.db3").write_bytes(os.urandom(50_000))
    return bag


def mixed_folder(folder: Path) -> Path:
    """Two images, random bytes named ``.jpg``, a text file and a subfolder holding one more image."""
    folder.mkdir()
    frames = clip_frames()
    cv2.imwrite(str(folder / "a.jpg"), frames[5])
    cv2.imwrite(str(folder / "b.png"), frames[15])
    (folder / "junk.jpg").write_bytes(os.urandom(5_000))
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "sub").mkdir()
    cv2.imwrite(str(folder / "sub" / "c.jpg"), frames[20])
    return folder


def pixel_bomb(folder: Path) -> Path:
    """A 118-byte PNG that declares 40000 x 40000 pixels: more than OpenCV decodes (2^30), which it refuses by
    raising rather than returning nothing."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 0, 0, 0, 0)  # 8-bit grey
    (folder / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                                      + chunk(b"IDAT", zlib.compress(bytes(40_001))) + chunk(b"IEND", b""))
    return folder / "bomb.png"


def empty_mp4(folder: Path) -> Path:
    (folder / "empty.mp4").touch()
    return folder / "empty.mp4"


def text_mp4(folder: Path) -> Path:
    (folder / "text.mp4").write_text("a text file renamed\n" * 20)
    return folder / "text.mp4"


def shortened(message):
    return dataclasses.replace(message, data=message.data[: len(message.data) // 2])


def narrowed(message):
    return dataclasses.replace(message, step=message.step - 10)


# Each input that cannot be analysed, with the start of its reason; "reason", "frames", "expected" are checked
# in summary.json where the input opened.
BAD_INPUTS: dict[str, tuple[Callable[[Path], Path], str, int | None]] = {
    "missing path": (lambda d: d / "missing.mcap", "{input}: no such file or folder", None),
    "empty file": (empty_mp4, "{input}: empty file (0 bytes)", None),
    "text renamed .mp4": (text_mp4, "cannot open video file {input} (corrupt or unsupported format)", None),
    "truncated mcap": (lambda d: cut_short(image_bag(d / "cut.mcap")),
                       "cannot open bag {input} (truncated or corrupt): ", None),
    "truncated db3": (lambda d: cut_short(image_bag(d / "cut.db3")),
                      "cannot open bag {input} (truncated or corrupt): ", None),
    "random bytes .db3": (random_db3, "cannot open bag {input} (truncated or corrupt): Cannot open database", None),
    "storage broken off midway": (lambda d: broken_off(image_bag(d / "broken.mcap")),
                                  f"4 of {BAG_FRAMES} images decoded (bag {{input}} is truncated or corrupt: "
                                  "Truncated record", 4),
    "no image topic": (lambda d: chatter_bag(d / "chatter.mcap"),
                       "bag {input} has no image topic (sensor_msgs/Image or CompressedImage); its topics: "
                       "/chatter (std_msgs/msg/String)", None),
    "data shorter than step x height": (lambda d: image_bag(d / "short.mcap", shortened),
                                        f"0 of {BAG_FRAMES} images decoded (data has 345600 bytes, expected "
                                        "step*height = 691200", 0),
    "step too small": (lambda d: image_bag(d / "narrow.mcap", narrowed),
                       f"0 of {BAG_FRAMES} images decoded (step 1910 is smaller than width*channels*bytes", 0),
    "image over the pixel limit": (pixel_bomb, "0 of 1 images decoded (corrupt, or not images; the first: bomb.png)",
                                   0),
    "mixed folder": (lambda d: mixed_folder(d / "mixed"),
                     "2 of 3 images decoded (corrupt, or not images; the first: junk.jpg)", 2),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_a_bad_input_fails_with_one_line_naming_it_and_the_reason(case, tmp_path, capsys):
    make, reason, frames = BAD_INPUTS[case]
    input_path, out = make(tmp_path), tmp_path / "out"
    assert analyze([str(input_path), "--out", str(out), "--quiet"]) == 1
    errors = capsys.readouterr().err
    assert "Traceback" not in errors
    lines = [line for line in errors.splitlines() if line.startswith("fer-analyze: ")]
    assert len(lines) == 1 and lines[0].startswith(f"fer-analyze: {input_path}: {reason.format(input=input_path)}"), \
        lines
    if frames is None:  # nothing opened: no results at all, so nothing half-written either
        assert not (out / "summary.json").exists() and not is_complete(out, input_path)
        return
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and lines[0].endswith(summary["reason"]) and summary["frames"] == frames
    with open(out / "frames.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == summary["face_rows"]


def grey_video(folder: Path) -> Path:
    """20 frames of the clip written as a one-channel (grey) video."""
    frames = clip_frames()[:20]
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(folder / "grey.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (width, height),
                             isColor=False)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    writer.release()
    return folder / "grey.avi"


def image_file(name: str, convert: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        cv2.imwrite(str(folder / name), convert(clip_frames()[10]))
        return folder / name
    return make


# Inputs in unusual formats that are analysed (converted to 8-bit BGR): the frames, and whether a face is found.
ODD_INPUTS: dict[str, tuple[Callable[[Path], Path], int, bool]] = {
    "16-bit png": (image_file("deep.png", lambda f: f.astype(np.uint16) * 257), 1, True),
    "4-channel png": (image_file("alpha.png", lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2BGRA)), 1, True),
    "1x1 image": (image_file("dot.png", lambda f: f[:1, :1]), 1, False),
    "grey video": (grey_video, 20, True),
}


@pytest.mark.parametrize("case", ODD_INPUTS)
def test_an_input_in_an_odd_format_is_analysed(case, tmp_path, capsys):
    make, frames, face = ODD_INPUTS[case]
    input_path, out = make(tmp_path), tmp_path / "out"
    assert analyze([str(input_path), "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is True and summary["frames"] == frames and (summary["face_rows"] > 0) == face


def test_a_batch_reports_and_skips_its_bad_inputs(tmp_path, capsys):
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    good, empty, text = grey_video(inputs), empty_mp4(inputs), text_mp4(inputs)
    cut = cut_short(image_bag(inputs / "cut.mcap"))
    assert analyze([str(inputs), "--out", str(out), "--quiet"]) == 1
    errors = capsys.readouterr().err
    batch = json.loads((out / "batch_summary.json").read_text())
    assert (batch["inputs"], batch["done"], batch["failed"]) == (4, 1, 3)
    records = {Path(r["input"]): r for r in batch["results"]}
    assert records[good]["status"] == "done" and records[good]["frames"] == 20
    for bad in (empty, text, cut):
        assert records[bad]["status"] == "failed"
        assert f"fer-analyze: {bad}: {records[bad]['error']}" in errors.splitlines()


@pytest.mark.parametrize("options, reason", [
    (["--folder-rate", "0"], "argument --folder-rate: '0': must be a number above 0"),
    (["--folder-rate", "-1"], "argument --folder-rate: '-1': must be a number above 0"),
    (["--folder-rate", "nan"], "argument --folder-rate: 'nan': must be a number above 0"),
    (["--jobs", "0"], "argument --jobs: '0': must be at least 1"),
    (["--window", "-3"], "argument --window: '-3': must be a number above 0"),
    (["--out", "{file}"], "--out {file}: is a file, not a folder"),
    (["--out", "{file}/sub"], "--out {file}/sub: cannot make the folder: Not a directory"),
    # The tests run as root, who may write where chmod forbids; nobody can make a folder in /proc.
    (["--out", "/proc/fer_out"], "--out /proc/fer_out: cannot make the folder: No such file or directory"),
])
def test_a_nonsensical_option_is_refused_with_the_reason(options, reason, tmp_path, capsys):
    image = image_file("face.png", lambda f: f)(tmp_path)
    existing = tmp_path / "results.txt"
    existing.write_text("an earlier file, not a folder\n")
    argv = [str(image), "--out", str(tmp_path / "out"), *(o.format(file=existing) for o in options)]
    with pytest.raises(SystemExit) as exit:
        analyze(argv)
    assert exit.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"fer-analyze: error: {reason.format(file=existing)}"
    assert existing.read_text() == "an earlier file, not a folder\n"


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, EXIT_INTERRUPTED), (signal.SIGTERM, EXIT_TERMINATED)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_during_render_and_bag_out_leaves_every_output_readable(signum, status, tmp_path):
    out = tmp_path / "out"
    code, errors, _ = stopped_once(
        ["fer_perception.offline.analyze_cli", str(media_path(CLIP)), "--out", str(out), "--render", "--bag-out",
         "--quiet"],
        lambda: (out / "frames.csv").is_file() and len((out / "frames.csv").read_text().splitlines()) > 1, signum)
    assert code == status, errors
    assert "Traceback" not in errors
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["interrupted"] is True and 0 < summary["frames"] < 72
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    assert f"fer-analyze: {media_path(CLIP)}: interrupted ({name}) after {summary['frames']} of 72" in errors
    with open(out / "frames.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == summary["face_rows"] and all(None not in row.values() for row in rows)
    with open(out / "events.csv", newline="") as handle:
        events = list(csv.DictReader(handle))
    onsets = {e["event_id"] for e in events if e["phase"] == "onset"}
    assert onsets == {e["event_id"] for e in events if e["phase"] == "offset"}
    video = cv2.VideoCapture(str(out / "annotated.mp4"))
    rendered = 0
    while video.read()[0]:
        rendered += 1
    video.release()
    assert rendered == summary["frames"]
    with AnyReader([out / "results"], default_typestore=typestore()) as reader:
        messages = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()]
    assert len(messages) == sum(summary["bag_out"]["messages"].values()) > 0


@pytest.fixture(scope="module")
def clip_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``frames.csv`` fer-analyze writes for the clip."""
    out = tmp_path_factory.mktemp("clip_results")
    assert analyze([str(media_path(CLIP)), "--out", str(out), "--quiet"]) == 0
    return out / "frames.csv"


def rendered_nothing(folder: Path, earlier: bytes) -> bool:
    """Whether the render folder holds only the earlier render, as it was: no video, whole or partial, was left."""
    return [(p.name, p.read_bytes()) for p in folder.iterdir()] == [("annotated.mp4", earlier)]


# fer-render's line for each input fer-analyze cannot analyse (BAD_INPUTS): its reason, with the input named first
# where the input opened but gave part of its frames; and for a video cut in half.
RENDER_REASONS = {case: reason if frames is None else "{input}: " + reason
                  for case, (_, reason, frames) in BAD_INPUTS.items()}
RENDER_INPUTS = {**{case: make for case, (make, _, _) in BAD_INPUTS.items()}, "truncated mp4": cut_in_half}
RENDER_REASONS["truncated mp4"] = "{input}: 33 of 72 frames decoded (truncated or corrupt video)"


@pytest.mark.parametrize("case", RENDER_INPUTS)
def test_fer_render_of_a_bad_input_says_why_in_one_line_and_leaves_no_video(case, clip_csv, tmp_path, capsys):
    input_path, folder = RENDER_INPUTS[case](tmp_path), tmp_path / "render"
    folder.mkdir()
    earlier = media_path(CLIP).read_bytes()[:5000]  # stands for the render of an earlier run
    (folder / "annotated.mp4").write_bytes(earlier)
    assert render([str(input_path), str(clip_csv), "--out", str(folder / "annotated.mp4"), "--quiet"]) == 1
    errors = capsys.readouterr().err
    assert "Traceback" not in errors
    lines = [line for line in errors.splitlines() if line.startswith("fer-render: ")]
    assert len(lines) == 1 and lines[0].startswith(f"fer-render: {RENDER_REASONS[case].format(input=input_path)}"), \
        lines
    assert rendered_nothing(folder, earlier)


def cut_rows(csv_file: Path, out: Path) -> None:
    """``csv_file`` with its fourth line cut in half, and the rest gone: a copy that stopped midway."""
    lines = csv_file.read_text().splitlines()
    out.write_text("\n".join(lines[:3] + [lines[3][: len(lines[3]) // 2]]))


def garbled_x(csv_file: Path, out: Path) -> None:
    """``csv_file`` with the box of its second row's face moved to ``x = "left"``."""
    with open(csv_file, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    rows[1]["x"] = "left"
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(rows)


# frames.csv files fer-render cannot draw: how each is made from the real one, and the reason.
BAD_CSVS: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "missing": (lambda real, out: None, "{csv}: cannot read: No such file or directory"),
    "empty": (lambda real, out: out.touch(), "{csv}: empty, not a frames.csv (no header line)"),
    "an image": (lambda real, out: out.write_bytes(media_path("single_face.jpg").read_bytes()),
                 "{csv}: not a CSV file ("),
    "another CSV": (lambda real, out: out.write_text("name,score\nada,3\n"),
                    "{csv}: not a frames.csv (no column frame, face_id, time_s, x, y, width, height)"),
    "cut midway": (cut_rows, "{csv}: line 4: fewer fields than the header"),
    "a word for a number": (garbled_x, "{csv}: line 3: x 'left' is not a number"),
}


@pytest.mark.parametrize("case", BAD_CSVS)
def test_fer_render_of_a_bad_frames_csv_says_why_in_one_line_and_leaves_no_video(case, clip_csv, tmp_path, capsys):
    make, reason = BAD_CSVS[case]
    bad, folder = tmp_path / "frames.csv", tmp_path / "render"
    make(clip_csv, bad)
    folder.mkdir()
    (folder / "annotated.mp4").write_bytes(b"an earlier render")
    assert render([str(media_path(CLIP)), str(bad), "--out", str(folder / "annotated.mp4"), "--quiet"]) == 1
    errors = capsys.readouterr().err
    assert "Traceback" not in errors
    assert errors.splitlines()[-1].startswith(f"fer-render: {reason.format(csv=bad)}"), errors
    assert rendered_nothing(folder, b"an earlier render")


@pytest.mark.parametrize("options, reason", [
    (["--out", "{folder}"], "--out {folder}: is a folder, not a video file"),
    (["--out", "{folder}/annotated.txt"],
     "--out {folder}/annotated.txt: is not a video file name (end it in .mp4, .mov, .avi, .mkv, .m4v)"),
    (["--out", "/proc/fer_out/annotated.mp4"],
     "--out /proc/fer_out/annotated.mp4: cannot make the folder /proc/fer_out: No such file or directory"),
    (["--out", "/proc/fer_out.mp4"], "--out /proc/fer_out.mp4: cannot write there: No such file or directory"),
    (["--window", "0"], "argument --window: '0': must be a number above 0"),
    (["--folder-rate", "-1"], "argument --folder-rate: '-1': must be a number above 0"),
])
def test_fer_render_refuses_an_output_it_cannot_write_or_a_nonsensical_option(options, reason, clip_csv, tmp_path,
                                                                             capsys):
    argv = [str(media_path(CLIP)), str(clip_csv), "--out", str(tmp_path / "annotated.mp4"),
            *(option.format(folder=tmp_path) for option in options)]
    with pytest.raises(SystemExit) as exit:
        render(argv)
    assert exit.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"fer-render: error: {reason.format(folder=tmp_path)}"
    assert list(tmp_path.iterdir()) == [], "refused, yet something was written"


def test_ctrl_c_during_fer_render_leaves_no_video(clip_csv, tmp_path):
    out = tmp_path / "annotated.mp4"
    status, errors, _ = stopped_once(["fer_perception.offline.render_cli", str(media_path("noface_face.mov")),
                                      str(clip_csv), "--out", str(out), "--quiet"], partial_path(out).exists)
    assert status == EXIT_INTERRUPTED, errors
    assert "Traceback" not in errors and f"fer-render: interrupted (Ctrl-C); {out} not written" in errors
    assert list(tmp_path.iterdir()) == [], "a partial video was left"


def replayed(bag: Path, *options: str) -> subprocess.CompletedProcess:
    """fer-replay on ``bag``, at once (no waiting for subscribers), as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "fer_perception.nodes.bag_replay", str(bag), "--no-wait", *options],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


# Bags fer-replay cannot play (to its end): how each is made, extra options, and the start of its error line.
BAD_REPLAYS: dict[str, tuple[Callable[[Path], Path], list[str], str]] = {
    "missing path": (lambda d: d / "missing", [], "cannot play: {bag}: no such file or folder"),
    "a video": (cut_in_half, [], "cannot play: {bag} is not a rosbag2 bag (a folder with metadata.yaml"),
    "truncated mcap": (lambda d: cut_short(image_bag(d / "cut.mcap")), [],
                       "cannot play: cannot open bag {bag} (truncated or corrupt): "),
    "random bytes .db3": (random_db3, [], "cannot play: cannot open bag {bag} (truncated or corrupt): "
                                          "Cannot open database"),
    "no image topic": (lambda d: chatter_bag(d / "chatter.mcap"), [],
                       "cannot play: bag {bag}: no image topic; its topics: /chatter (std_msgs/msg/String)"),
    "a topic it does not have": (lambda d: image_bag(d / "session.mcap"), ["--topics", "/camera/missing"],
                                 "cannot play: bag {bag}: no topic /camera/missing; its topics: /camera/image_raw"),
    "storage broken off midway": (lambda d: broken_off(image_bag(d / "broken.mcap")), ["--rate", "10"],
                                  "stopping after 4 messages: bag {bag} is truncated or corrupt: Truncated record"),
}


@pytest.mark.parametrize("case", BAD_REPLAYS)
def test_fer_replay_of_a_bad_bag_says_why_in_one_line_and_exits_1(case, tmp_path):
    make, options, reason = BAD_REPLAYS[case]
    bag = make(tmp_path)
    done = replayed(bag, *options)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and f"[bag_replay]: {reason.format(bag=bag)}" in errors[0], done.stderr[-2000:]


def analysed_in_a_process(image: Path, out: Path) -> tuple[dict, int]:
    """``fer-analyze IMAGE --render`` run as a command; its summary and its peak memory (bytes)."""
    run = subprocess.Popen([sys.executable, "-m", "fer_perception.offline.analyze_cli", str(image), "--out", str(out),
                            "--render", "--quiet"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(run.pid, 0)  # the resources of this process alone
    run.returncode = os.waitstatus_to_exitcode(status)
    assert run.returncode == 0, f"fer-analyze {image} exited {run.returncode}"
    return json.loads((out / "summary.json").read_text()), usage.ru_maxrss * 1024


def test_an_8000_by_8000_image_is_analysed_and_rendered_in_sane_memory_and_time(tmp_path):
    photo = cv2.imread(str(media_path("single_face.jpg")))
    huge = cv2.resize(photo, (8000, 8000), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    cv2.imwrite(str(tmp_path / "huge.jpg"), huge)
    small, small_peak = analysed_in_a_process(tmp_path / "photo.png", tmp_path / "small")
    summary, peak = analysed_in_a_process(tmp_path / "huge.jpg", tmp_path / "huge")
    assert summary["complete"] is True and summary["frames"] == small["frames"] == 1
    assert summary["face_rows"] == small["face_rows"] == 1
    with open(tmp_path / "small" / "frames.csv", newline="") as handle:
        expected = next(csv.DictReader(handle))
    with open(tmp_path / "huge" / "frames.csv", newline="") as handle:
        found = next(csv.DictReader(handle))
    scale = np.array([8000 / photo.shape[1], 8000 / photo.shape[0]])
    for corner in (("x", "y"), ("width", "height")):
        assert np.allclose([float(found[k]) for k in corner], scale * [float(expected[k]) for k in corner],
                           rtol=0.05, atol=8 * scale.max()), (found, expected)
    # Analysis and render hold a few full-size copies of the image at a time (3 measured; one is 183 MiB), and take
    # seconds.
    assert peak - small_peak < 5 * huge.nbytes, f"{(peak - small_peak) / 2**20:.0f} MiB more than for the photo"
    assert summary["analysis_seconds"] < 30
    video = cv2.VideoCapture(str(tmp_path / "huge" / "annotated.mp4"))
    read, frame = video.read()
    video.release()
    assert read and frame.shape == (3840, 3840 + 540, 3), "the render scales the image to 3840 pixels"
