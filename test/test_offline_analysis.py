"""fer-analyze on real media and real rosbag2 bags (mcap and sqlite3, raw and jpeg), batch mode and rendering."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from bag_helpers import NS, video_frames, write_image_bag
from conftest import REPO, media_path
from fer_perception.emotion.classifier import BACKENDS
from fer_perception.expression_pipeline import EMOTION_SMOOTHING_METHODS
from fer_perception.face.detector import detector_names
from fer_perception.offline.analysis import AnalysisChoices, Analyzer
from fer_perception.offline.analyze_cli import main as analyze
from fer_perception.offline.bags import typestore
from fer_perception.offline.render import PANEL_WIDTH, MIN_HEIGHT
from fer_perception.offline.render_cli import main as render
from fer_perception.offline.results import EVENT_COLUMNS, is_complete
from fer_perception.report import AU_COLUMNS, FACE_COLUMNS, PROBABILITY_SMOOTHED_COLUMNS

CLIP = "single_face.mp4"
POSITION_COLUMNS = ("source", "time_s")  # what legitimately differs between a video and a bag of its frames


def rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "frames.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def clip_frames() -> tuple[list[np.ndarray], float]:
    return video_frames(media_path(CLIP))


@pytest.fixture(scope="module")
def video_analysis(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("video")
    assert analyze([str(media_path(CLIP)), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def raw_mcap(tmp_path_factory, clip_frames) -> tuple[Path, list[int]]:
    folder = tmp_path_factory.mktemp("bags")
    stamps = write_image_bag(folder / "session.mcap", *clip_frames)
    return folder / "session", stamps


def test_video_rows_cover_every_frame_with_a_face(video_analysis, clip_frames):
    table = rows(video_analysis)
    assert list(table[0]) == list(FACE_COLUMNS)
    frames = [int(r["frame"]) for r in table]
    assert frames == sorted(frames) and len(set(frames)) == len(table)
    assert len(table) >= len(clip_frames[0]) - 5, "a face is in every frame of the clip"
    assert {r["face_id"] for r in table} == {"f0"} and {r["source"] for r in table} == {CLIP}
    fps = clip_frames[1]
    assert all(abs(float(r["time_s"]) - int(r["frame"]) / fps) < 1e-5 for r in table)
    sample = table[-1]
    assert 0 <= float(sample["AU12_r"]) <= 5 and sample["label_smoothed"] and sample["eye_closure_left"]
    probabilities = [float(sample[f"p_{label}"]) for label in ("angry", "disgust", "fear", "happy", "sad",
                                                               "surprise", "neutral")]
    assert abs(sum(probabilities) - 1) < 2e-3
    summary = json.loads((video_analysis / "summary.json").read_text())
    face = summary["faces"]["f0"]
    assert summary["complete"] and summary["frames"] == summary["frames_expected"] == len(clip_frames[0])
    assert summary["reason"] is None and summary["stamps_went_back"] == 0 and summary["interrupted"] is False
    assert summary["realtime_factor"] > 0
    assert face["frames"] == len(table)
    assert abs(face["time_present_s"] - len(table) / fps) < 0.05
    assert abs(sum(face["time_per_emotion_s"].values()) - face["time_present_s"]) < 0.05
    events = json.loads((video_analysis / "events.json").read_text())
    assert face["event_counts"]["face_appeared"] == 1 and all(e["face_id"] == "f0" for e in events)
    with open(video_analysis / "events.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(events)
    onsets = {e["event_id"] for e in events if e["phase"] == "onset"}
    assert onsets == {e["event_id"] for e in events if e["phase"] == "offset"}, "an episode was left open"


def test_a_bag_of_the_same_frames_gives_the_same_results(video_analysis, raw_mcap, tmp_path):
    bag, stamps = raw_mcap
    assert analyze([str(bag), "--out", str(tmp_path), "--quiet"]) == 0
    from_bag, from_video = rows(tmp_path), rows(video_analysis)
    assert len(from_bag) == len(from_video)
    for a, b in zip(from_bag, from_video):
        assert {k: v for k, v in a.items() if k not in POSITION_COLUMNS} == \
               {k: v for k, v in b.items() if k not in POSITION_COLUMNS}
        assert round(float(a["time_s"]) * NS) == pytest.approx(stamps[int(a["frame"])], abs=2000)
    assert from_bag[0]["source"] == "session:/camera/image_raw"


def test_a_neutral_range_is_each_face_s_neutral_face_from_the_first_frame(video_analysis, tmp_path, capsys):
    out = tmp_path / "neutral"
    assert analyze([str(media_path(CLIP)), "--out", str(out), "--quiet", "--neutral", "0:0.4"]) == 0
    table = rows(out)
    assert {r["face_id"] for r in table} == {"f0"} and {r["au_calibration"] for r in table} == {"1.000"}
    assert json.loads((out / "summary.json").read_text())["neutral_range_s"] == [0.0, 0.4]
    assert is_complete(out, media_path(CLIP), (0.0, 0.4)) and not is_complete(out, media_path(CLIP)), \
        "another neutral range must analyse again"
    assert float(rows(video_analysis)[0]["au_calibration"]) < 1, "without --neutral it starts from the prior"
    assert json.loads((video_analysis / "summary.json").read_text())["neutral_range_s"] is None
    with pytest.raises(SystemExit) as refused:
        analyze([str(media_path(CLIP)), "--out", str(tmp_path / "bad"), "--neutral", "2:1"])
    assert refused.value.code != 0 and "--neutral" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_model_choices_are_applied_recorded_and_refused_when_unknown(video_analysis, tmp_path, capsys):
    choices = AnalysisChoices(detector="mediapipe_short_range", emotion_backend="torch", coarse_to_fine=True,
                              emotion_smoothing="attention", au_estimator="geometry")
    analyzer = Analyzer.from_config(warn=lambda message: None, choices=choices)
    try:
        assert (analyzer.front_end.config.detector, analyzer.pipeline.classifier.backend,
                analyzer.pipeline.coarse_to_fine, analyzer.pipeline.smoothing.emotion_method,
                analyzer.pipeline.au_estimator.name) == tuple(choices.made().values())
    finally:
        analyzer.close()
    with pytest.raises(ValueError, match="learned.checkpoints"):  # the learned estimator is asked for, unconfigured
        Analyzer.from_config(warn=lambda message: None, choices=AnalysisChoices(au_estimator="learned"))

    out = tmp_path / "attention"
    assert analyze([str(media_path(CLIP)), "--out", str(out), "--quiet", "--smoothing", "attention",
                    "--coarse-to-fine"]) == 0
    made = {"coarse_to_fine": True, "emotion_smoothing": "attention"}
    assert json.loads((out / "summary.json").read_text())["choices"] == made
    assert json.loads((video_analysis / "summary.json").read_text())["choices"] == {}
    smoothed = [[r[c] for c in PROBABILITY_SMOOTHED_COLUMNS] for r in rows(out)]
    assert smoothed != [[r[c] for c in PROBABILITY_SMOOTHED_COLUMNS] for r in rows(video_analysis)]
    assert is_complete(out, media_path(CLIP), None, made) and not is_complete(out, media_path(CLIP)), \
        "other choices must analyse again"

    for option, choices_listed in (("--detector", detector_names()), ("--emotion-backend", BACKENDS),
                                   ("--smoothing", EMOTION_SMOOTHING_METHODS), ("--au-estimator", ("geometry",))):
        with pytest.raises(SystemExit) as refused:
            analyze([str(media_path(CLIP)), "--out", str(tmp_path / "bad"), option, "fastest"])
        error = capsys.readouterr().err
        assert refused.value.code == 2 and option in error and all(name in error for name in choices_listed)
    assert not (tmp_path / "bad").exists()


def test_sqlite_bag_of_jpeg_images(clip_frames, tmp_path):
    stamps = write_image_bag(tmp_path / "compressed.db3", *clip_frames, compressed=True)
    out = tmp_path / "out"
    assert analyze([str(tmp_path / "compressed" / "compressed.db3"), "--out", str(out), "--quiet"]) == 0
    table = rows(out)
    assert len(table) >= len(stamps) - 5 and {r["face_id"] for r in table} == {"f0"}
    assert all(abs(float(r["time_s"]) * NS - stamps[int(r["frame"])]) < 2000 for r in table)


def test_bag_out_reads_back_as_fer_msgs(raw_mcap, tmp_path):
    bag, stamps = raw_mcap
    assert analyze([str(bag), "--out", str(tmp_path), "--quiet", "--bag-out"]) == 0
    assert analyze([str(bag), "--out", str(tmp_path), "--quiet", "--bag-out"]) == 0, "complete: skipped"
    assert analyze([str(bag), "--out", str(tmp_path), "--quiet", "--bag-out", "--bag-images", "--force"]) == 0
    table = rows(tmp_path)
    messages: dict[str, list] = {}
    with AnyReader([tmp_path / "results"], default_typestore=typestore()) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for connection, recorded_ns, raw in reader.messages():
            messages.setdefault(connection.topic, []).append((recorded_ns, reader.deserialize(raw, connection.msgtype)))
    assert types == {"/fer/faces": "fer_msgs/msg/Faces", "/fer/expressions": "fer_msgs/msg/Expressions",
                     "/fer/events": "fer_msgs/msg/Events", "/camera/image_raw": "sensor_msgs/msg/Image"}
    assert len(messages["/fer/faces"]) == len(messages["/fer/expressions"]) == len(stamps)
    assert len(messages["/camera/image_raw"]) == len(stamps)
    header_stamps = [m.header.stamp.sec * NS + m.header.stamp.nanosec for _, m in messages["/fer/expressions"]]
    assert header_stamps == stamps == [t for t, _ in messages["/fer/faces"]]
    assert {m.header.frame_id for _, m in messages["/fer/faces"]} == {"test_camera"}
    expressions = [(stamp, e) for stamp, (_, m) in zip(header_stamps, messages["/fer/expressions"])
                   for e in m.expressions]
    assert len(expressions) == len(table)
    for (_, expression), row in zip(expressions, table):
        assert expression.face_id == row["face_id"]
        assert np.allclose(expression.au_intensity, [float(row[c] or 0) for c in AU_COLUMNS], atol=1e-3)
    events = [e for _, m in messages["/fer/events"] for e in m.events]
    assert len(events) == len(json.loads((tmp_path / "events.json").read_text()))


def test_several_image_topics_need_a_choice(clip_frames, tmp_path, capsys):
    write_image_bag(tmp_path / "two.mcap", clip_frames[0][:10], clip_frames[1],
                    topics=("/left/image_raw", "/right/image_raw"))
    assert analyze([str(tmp_path / "two"), "--out", str(tmp_path / "a"), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert "/left/image_raw" in error and "/right/image_raw" in error and "--topic" in error
    assert analyze([str(tmp_path / "two"), "--out", str(tmp_path / "b"), "--quiet", "--topic", "/right/image_raw"]) == 0
    assert {r["source"] for r in rows(tmp_path / "b")} <= {"two:/right/image_raw"}


def test_batch_skips_bad_inputs_resumes_and_is_deterministic(raw_mcap, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(media_path(CLIP), inputs / "clip.mp4")
    (inputs / "corrupt.mp4").write_bytes(media_path(CLIP).read_bytes()[:4000])
    shutil.copytree(raw_mcap[0], inputs / "truncated")
    storage = inputs / "truncated" / "session.mcap"
    storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 2])
    out = tmp_path / "out"
    assert analyze([str(inputs), "--out", str(out), "--quiet"]) == 1
    error = capsys.readouterr().err
    batch = json.loads((out / "batch_summary.json").read_text())
    status = {Path(r["input"]).name: r for r in batch["results"]}
    assert status["clip.mp4"]["status"] == "done" and batch["done"] == 1 and batch["failed"] == 2
    assert "corrupt" in status["corrupt.mp4"]["error"] or "cannot open" in status["corrupt.mp4"]["error"]
    assert "truncated" in status["truncated"]["error"]
    assert "corrupt.mp4" in error and "truncated" in error
    first = rows(out / "clip")
    assert first and not (out / "truncated" / "summary.json").exists()

    assert analyze([str(inputs), "--out", str(out), "--quiet"]) == 1
    again = {Path(r["input"]).name: r["status"] for r in json.loads((out / "batch_summary.json").read_text())["results"]}
    assert again["clip.mp4"] == "skipped"

    shutil.rmtree(inputs / "truncated")
    (inputs / "corrupt.mp4").unlink()
    shutil.copy(media_path(CLIP), inputs / "copy.mp4")
    assert analyze([str(inputs), "--out", str(out), "--quiet", "--force", "--jobs", "2"]) == 0
    assert rows(out / "clip") == first
    assert [{k: v for k, v in r.items() if k != "source"} for r in rows(out / "copy")] == \
           [{k: v for k, v in r.items() if k != "source"} for r in first]


def test_render_writes_a_playable_video_and_fer_render_redraws_an_edited_csv(video_analysis, clip_frames, tmp_path):
    assert analyze([str(media_path(CLIP)), "--out", str(tmp_path), "--quiet", "--render"]) == 0
    frames, fps = clip_frames
    height, width = frames[0].shape[:2]
    decoded, _ = video_frames(tmp_path / "annotated.mp4")
    assert len(decoded) == len(frames)
    assert decoded[0].shape == (max(height, MIN_HEIGHT), width + PANEL_WIDTH, 3)
    middle = len(frames) // 2
    panel = decoded[middle][:, width:]
    assert panel.std() > 10, "the timing diagrams are empty"
    assert np.abs(decoded[middle][:height, :width].astype(int) - frames[middle]).mean() < 12, \
        "the left part is not the input frame"

    edited = tmp_path / "edited.csv"
    table = rows(tmp_path)
    with open(edited, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FACE_COLUMNS)
        writer.writeheader()
        writer.writerows(r for r in table if int(r["frame"]) < middle)
    assert render([str(media_path(CLIP)), str(edited), "--out", str(tmp_path / "edited.mp4")]) == 0
    redrawn, _ = video_frames(tmp_path / "edited.mp4")
    assert len(redrawn) == len(frames) and redrawn[0].shape == decoded[0].shape
    early, late = middle // 2, len(frames) - 3
    assert np.abs(redrawn[early].astype(int) - decoded[early]).mean() < 3, "same rows should draw the same"
    box = table[-1]
    x, y = int(float(box["x"])), int(float(box["y"]))
    assert np.abs(redrawn[late][y - 2:y + 3, x:x + 40].astype(int) - decoded[late][y - 2:y + 3, x:x + 40]).mean() > 10, \
        "rows removed from the CSV are still drawn"


def test_images_of_a_folder_are_analysed_one_by_one_with_their_names(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(media_path("single_face.jpg"), photos / "a_single.jpg")
    shutil.copy(media_path("multi_face.jpg"), photos / "b_group.jpg")
    (photos / "notes.txt").write_text("not an image")
    assert analyze([str(photos), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    table = rows(tmp_path / "out")
    by_image = {name: [r for r in table if r["source"] == name] for name in ("a_single.jpg", "b_group.jpg")}
    assert len(by_image["a_single.jpg"]) == 1 and by_image["a_single.jpg"][0]["frame"] == "0"
    assert by_image["a_single.jpg"][0]["label"] == "happy"
    assert len(by_image["b_group.jpg"]) == 5 and {r["frame"] for r in by_image["b_group.jpg"]} == {"1"}
    assert float(by_image["b_group.jpg"][0]["time_s"]) == pytest.approx(0.1)  # folder rate 10 Hz


def test_a_missing_emotion_model_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import yaml

    from fer_perception.offline import analysis

    config = yaml.safe_load((REPO / "config" / "emotion.yaml").read_text())
    config["classifier"]["model"] = str(tmp_path / "no_such_model.pt")
    (tmp_path / "emotion.yaml").write_text(yaml.safe_dump(config))
    original = analysis.config_path
    monkeypatch.setattr(analysis, "config_path",
                        lambda name: tmp_path / name if name == "emotion.yaml" else original(name))
    assert analyze([str(media_path(CLIP)), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "no_such_model.pt" in capsys.readouterr().err


def test_every_output_column_is_documented():
    text = (REPO / "docs" / "offline_analysis.md").read_text()
    missing = [c for c in (*FACE_COLUMNS, *EVENT_COLUMNS) if f"`{c}`" not in text
               and not (c.startswith("AU") or c.startswith("p_"))]
    assert not missing, f"undocumented columns: {missing}"
    assert "`AUxx_r`" in text and "`AUxx_r_smoothed`" in text and "`p_<emotion>`" in text
