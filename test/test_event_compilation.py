"""fer-analyze --compile on real media: a title card, then each clip of events, read back from the written video."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bag_helpers import video_frames, write_image_bag
from conftest import media_path
from fer_perception.offline.analyze_cli import main as analyze
from fer_perception.offline.compilation import CompilationSettings
from fer_perception.offline.inputs import AnalysisInput
from fer_perception.offline.render import BACKGROUND

CLIP = "single_face.mp4"  # a smile (felt) and a happy episode from 0.7 s to 2.37 s, a blink at 0.87 s


def is_card(image: np.ndarray) -> bool:
    """A title card: the background colour nearly everywhere, with some text on it."""
    background = np.abs(image.astype(int) - BACKGROUND).max(axis=2) < 12
    return background.mean() > 0.9 and (image.max(axis=2) > 120).mean() > 0.002


def shown(input_path: Path, out: Path, kinds: tuple[str, ...], folder_rate: float = 10.0) -> list[list[int]]:
    """The input frames the compilation should show, as runs of consecutive frames (one run per clip): those
    within the context of an event of ``kinds`` in ``events.json``."""
    settings = CompilationSettings.from_config()
    events = [e for e in json.loads((out / "events.json").read_text())
              if e["kind"] in kinds and e["phase"] != "onset"]
    runs: list[list[int]] = []
    previous = None
    for frame in AnalysisInput(input_path, None, folder_rate, "camera").frames():
        t = frame.stamp_ns / 1e9
        if any(e["start_s"] - settings.before_s <= t <= (e["end_s"] or e["start_s"]) + settings.after_s
               for e in events):
            if previous != frame.index - 1:
                runs.append([])
            runs[-1].append(frame.index)
            previous = frame.index
    return runs


def card_frames(fps: float) -> int:
    return round(CompilationSettings.from_config().card_s * fps)


def test_a_card_then_the_event_clip_drawn_as_the_annotated_video(tmp_path):
    assert analyze([str(media_path(CLIP)), "--out", str(tmp_path), "--quiet", "--render", "--compile"]) == 0
    compiled, fps = video_frames(tmp_path / "events.mp4")
    annotated, _ = video_frames(tmp_path / "annotated.mp4")
    runs = shown(media_path(CLIP), tmp_path, CompilationSettings.from_config().kinds)
    cards = card_frames(fps)
    assert len(runs) == 1, "the smile and the happy episode overlap: one clip"
    assert len(compiled) == cards + len(runs[0])
    assert all(is_card(image) for image in compiled[:cards]), "no title card before the clip"
    assert not any(is_card(image) for image in compiled[cards:])
    summary = json.loads((tmp_path / "summary.json").read_text())["compilation"]
    assert summary == {"path": str(tmp_path / "events.mp4"), "clips": 1, "events": 2, "frames": len(compiled)}

    episodes = [e for e in json.loads((tmp_path / "events.json").read_text()) if e["phase"] == "offset"]
    height, width = video_frames(media_path(CLIP))[0][0].shape[:2]
    for index in (runs[0][3], runs[0][len(runs[0]) // 2]):
        image, reference = compiled[cards + runs[0].index(index)].astype(int), annotated[index].astype(int)
        inner = (slice(20, height - 80), slice(20, width - 20))
        assert np.abs(image[inner] - reference[inner]).mean() < 4, "the clip is not the annotated frame"
        assert np.abs(image[:, width:] - reference[:, width:]).mean() < 4, "the timing diagrams differ"
        during = any(e["start_s"] <= index / fps <= e["end_s"] for e in episodes)
        edge = np.abs(image[:4, :width] - reference[:4, :width]).mean()
        assert (edge > 20) == during, f"frame {index}: the event's border should show only while it is under way"


@pytest.mark.parametrize("kind", ["bag", "image folder"])
def test_bags_and_image_folders_compile_too(kind, tmp_path):
    frames, fps = video_frames(media_path(CLIP))
    if kind == "bag":
        write_image_bag(tmp_path / "session.mcap", frames, fps)
        source = tmp_path / "session"
    else:
        source = tmp_path / "frames"
        source.mkdir()
        for index, frame in enumerate(frames):
            cv2.imwrite(str(source / f"frame_{index:03d}.png"), frame)
    out = tmp_path / "out"
    # blinks are not compiled by default: asking for them alone gives the blink's clip only
    assert analyze([str(source), "--out", str(out), "--quiet", "--compile", "--compile-kinds", "blink",
                    "--folder-rate", str(fps)]) == 0
    runs = shown(source, out, ("blink",), fps)
    compiled, compiled_fps = video_frames(out / "events.mp4")
    assert compiled_fps == pytest.approx(fps, rel=0.01)
    assert len(runs) == 1 and 0 < len(runs[0]) < len(frames), "a blink's clip is shorter than the input"
    cards = card_frames(fps)
    assert len(compiled) == cards + len(runs[0])
    assert all(is_card(image) for image in compiled[:cards]) and not is_card(compiled[cards])


def test_an_input_without_events_gets_one_card_saying_so(tmp_path, capsys):
    arguments = [str(media_path("no_face.mp4")), "--out", str(tmp_path), "--compile"]
    assert analyze(arguments) == 0
    assert "no events to compile" in capsys.readouterr().out
    compiled, fps = video_frames(tmp_path / "events.mp4")
    assert len(compiled) == card_frames(fps) and all(is_card(image) for image in compiled)
    assert analyze(arguments) == 0
    assert "skipped" in capsys.readouterr().out, "a complete analysis with its compilation is not redone"
    with pytest.raises(SystemExit) as exit_status:
        analyze([*arguments, "--compile-kinds", "smiles"])
    assert exit_status.value.code == 2 and "unknown event kind(s) smiles" in capsys.readouterr().err
