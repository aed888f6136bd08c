"""Emotion models chosen by name: emotion.yaml lists the shipped models, an unknown name lists the choices, and
every way in (the loading core, fer-analyze, fer-evaluate) takes the same names (the expression node's parameter:
test_node_start_errors.py; the graph argument: test_graph_description.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_perception.emotion import evaluate
from fer_perception.emotion.checkpoint import load_model
from fer_perception.emotion.loading import (UnknownEmotionModelError, emotion_config, load_emotion_model,
                                            model_fusion, model_names, model_path, model_temperature)
from fer_perception.expression_pipeline import pipeline_from_config
from fer_perception.offline import analyze_cli


def test_every_listed_model_is_shipped_with_its_int8_graph_and_card():
    config = emotion_config()
    names = model_names(config)
    assert config["classifier"]["model"] in names
    for name in names:
        path = model_path(config, name)
        assert path.is_file(), f"{name}: {path} missing"
        assert path.with_suffix(".int8.onnx").is_file(), f"{name}: int8 graph of {path} missing"
        assert path.with_suffix(".md").is_file(), f"{name}: model card of {path} missing"
        load_model(path)  # weights_only loading of the shipped format


def test_names_files_and_unknown_names():
    config = emotion_config()
    assert model_path(config) == model_path(config, config["classifier"]["model"])
    assert model_path(config, "/tmp/mine.pt") == Path("/tmp/mine.pt")
    with pytest.raises(UnknownEmotionModelError) as raised:
        model_path(config, "vgg13")
    for name in model_names(config):
        assert name in str(raised.value)
    # An unknown name is an error even when the learned classifier is switched off.
    off = {**config, "fusion": {**config["fusion"], "learned": 0.0}}
    with pytest.raises(UnknownEmotionModelError):
        load_emotion_model(off, print, "vgg13")


def test_fer_analyze_refuses_an_unknown_model_before_analysing(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as stopped:
        analyze_cli.parse_args([str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "out"),
                                "--emotion-model", "vgg13"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "--emotion-model" in error and all(name in error for name in model_names(emotion_config()))


def test_fer_evaluate_compares_every_named_model_by_default(tmp_path: Path, capsys, small_fer):
    report = tmp_path / "report.json"
    assert evaluate.main([str(small_fer), "--split", "test", "--no-ferplus", "--json", str(report)]) == 0
    names = model_names(emotion_config())
    results = json.loads(report.read_text())
    results = results["models"] if len(names) > 1 else [results]
    assert [r["name"] for r in results] == names
    assert [r["model"] for r in results] == [str(model_path(emotion_config(), n)) for n in names]
    assert [r["temperature"] for r in results] == [model_temperature(emotion_config(), n) for n in names]
    printed = capsys.readouterr().out
    assert all(f"model {name} (" in printed for name in names)
    assert evaluate.main([str(small_fer), "--model", "vgg13"]) == 2
    assert "vgg13" in capsys.readouterr().err


def test_each_model_is_fused_with_its_own_weights():
    config = emotion_config()
    models = config["classifier"]["models"]
    for name in model_names(config):
        weights = pipeline_from_config(None, emotion_model=name).fusion_weights
        assert weights == (models[name]["fusion"]["learned"], models[name]["fusion"]["facs"]), name
    default = config["classifier"]["model"]
    assert pipeline_from_config(None).fusion_weights == pipeline_from_config(None, emotion_model=default).fusion_weights
    assert model_fusion(config, "/tmp/mine.pt") == config["fusion"]
    assert len({pipeline_from_config(None, emotion_model=n).fusion_weights for n in model_names(config)}) > 1
