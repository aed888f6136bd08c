"""Frame sources without ROS: video files, image folders, and a webcam that is not there."""
from __future__ import annotations

import logging
import threading

import cv2
import pytest

from conftest import media_path
from fer_perception.video_source import (ImageFolderSource, SourceError, VideoFileSource, WebcamSource,
                                         open_source, parse_device)


def read_all(source, limit=1000):
    frames = []
    while len(frames) < limit and (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def test_video_file_gives_every_frame_on_its_timeline():
    source = VideoFileSource(media_path("single_face.mp4"))
    frames = read_all(source)
    assert len(frames) == 72
    assert source.nominal_rate == pytest.approx(30.0, abs=0.5)
    assert frames[0].image.shape == (360, 640, 3)
    assert [f.index for f in frames] == list(range(72))
    assert frames[30].media_time_s == pytest.approx(1.0, abs=0.02)
    source.rewind()
    assert source.read().index == 0
    source.close()


def test_image_folder_in_name_order_and_single_image(tmp_path):
    photo = cv2.imread(str(media_path("single_face.jpg")))
    for index in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"img_{index}.png"), cv2.flip(photo, 1) if index == 1 else photo)
    (tmp_path / "notes.txt").write_text("not an image")
    source = ImageFolderSource(tmp_path, rate=5.0)
    frames = read_all(source)
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[2].media_time_s == pytest.approx(0.4)
    assert (frames[1].image == cv2.flip(photo, 1)).all()
    single = open_source(str(media_path("single_face.jpg")), 10.0, demo_clip=tmp_path)
    assert len(read_all(single)) == 1


def test_bad_sources_are_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        open_source(str(tmp_path / "missing.mp4"), 10.0, demo_clip=tmp_path)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(SourceError, match="corrupt"):
        open_source(str(corrupt), 10.0, demo_clip=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(empty), 10.0, demo_clip=tmp_path)
    for device in ("/dev/video_fer_missing", "97"):  # a camera asked for by name that is not there
        with pytest.raises(SourceError, match="no camera found"):
            open_source(device, 10.0, demo_clip=tmp_path)


def test_device_strings():
    assert parse_device("0") == 0
    assert parse_device("/dev/video2") == "/dev/video2"
    assert parse_device("clip.mp4") is None


def test_auto_falls_back_to_the_demo_clip_without_a_webcam():
    demo = media_path("single_face.mp4")
    source = open_source("auto", 10.0, demo_clip=demo)
    # This machine has no camera; with one attached, 'auto' is the webcam.
    assert isinstance(source, (VideoFileSource, WebcamSource))
    if isinstance(source, VideoFileSource):
        assert source.path == demo


def test_missing_webcam_is_retried_with_back_off_until_stopped(caplog):
    stop = threading.Event()
    camera = WebcamSource("/dev/video_fer_missing", retry_initial_s=0.1, retry_max_s=0.4, stop=stop)
    delays = camera.retry_delays()
    assert [next(delays) for _ in range(5)] == [0.1, 0.2, 0.4, 0.4, 0.4]
    result = []
    with caplog.at_level(logging.WARNING):
        reader = threading.Thread(target=lambda: result.append(camera.read()))
        reader.start()
        reader.join(timeout=1.0)
        assert reader.is_alive(), "read() must keep retrying while the camera is away"
        stop.set()
        reader.join(timeout=2.0)
    assert not reader.is_alive() and result == [None]
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) >= 3 and "retrying in 0.1 s" in retries[0] and "retrying in 0.4 s" in retries[-1]
