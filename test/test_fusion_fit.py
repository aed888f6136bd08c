"""fer-fit-fusion on the first val faces of FER2013: one row per FACS weight with figures that follow from the
fused predictions, the best FER+ macro-F1 chosen, the landmark-assisted trial reported, test never offered; and the
temperature it chooses first, which recovers a known miscalibration and is what the expression stage applies."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import data_dir
from fer_perception.emotion.evaluate import expected_calibration_error
from fer_perception.emotion.fusion import temperature_scaled
from fer_perception.emotion.fusion_fit import FACS_WEIGHTS, TEMPERATURES, best_weight, fit_temperature, main
from fer_perception.emotion.loading import emotion_config, model_names, model_temperature
from fer_perception.expression_pipeline import pipeline_from_config


def test_fer_fit_fusion_scores_every_weight_and_picks_the_best_macro_f1(tmp_path: Path, capsys):
    if not (data_dir() / "fer2013" / "fer2013.npz").is_file():
        pytest.fail(f"test data missing: {data_dir() / 'fer2013'} (set FER_DATA_DIR to the shared data folder)")
    report = tmp_path / "fusion.json"
    assert main(["--limit", "80", "--model", "fer2013", "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    rows = result["rows"]
    assert [row["facs_weight"] for row in rows] == list(FACS_WEIGHTS)
    assert result["faces"] == 80 and 0 < result["with_facs"] <= 80
    assert result["chosen_facs_weight"] == best_weight(rows)
    assert len({round(row["ferplus_accuracy"], 4) for row in rows}) > 1  # the FACS weight changes predictions
    assert set(result["landmark_assisted"]) == {"learned only (recalibrated)", "learned + AU intensities"}
    temperature = result["temperature"]
    assert temperature["fitted"] in TEMPERATURES and temperature["nll_fitted"] <= temperature["nll_at_1"]
    assert temperature["chosen"] == (temperature["fitted"] if temperature["ece_fitted"] < temperature["ece_at_1"]
                                     else 1.0)
    printed = capsys.readouterr().out
    assert "best FER+ macro-F1 at FACS weight" in printed and "temperature (lowest NLL" in printed
    with pytest.raises(SystemExit):
        main(["--split", "test"])
    assert main(["--model", "vgg13"]) == 2


def _labelled_logits(count: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of seven classes and labels drawn from their softmax: probabilities that are calibrated."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, (count, 7))
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(7, p=row) for row in probabilities])
    return logits, labels


def test_temperature_scaling_recovers_how_far_probabilities_are_off_and_keeps_calibrated_ones():
    logits, labels = _labelled_logits()
    softmax = lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)  # noqa: E731
    timid = softmax(logits * 0.7)  # a model whose logits are 0.7 of the calibrated ones: underconfident
    fit = fit_temperature(timid, labels)
    assert fit["fitted"] == pytest.approx(0.7, abs=0.051) and fit["chosen"] == fit["fitted"]
    assert fit["ece_fitted"] < 0.02 < fit["ece_at_1"]
    assert np.allclose(temperature_scaled(timid, 0.7), softmax(logits), atol=1e-6)
    assert np.array_equal(temperature_scaled(timid, 0.7).argmax(1), timid.argmax(1))
    assert temperature_scaled(timid, 1.0) is timid
    calibrated = fit_temperature(softmax(logits), labels)
    assert calibrated["fitted"] == pytest.approx(1.0, abs=0.051)
    assert expected_calibration_error(temperature_scaled(softmax(logits), calibrated["chosen"]), labels) < 0.02


def test_each_model_runs_at_its_own_temperature_and_a_bad_one_is_refused(tmp_path: Path):
    config = emotion_config()
    for name in model_names(config):
        assert pipeline_from_config(None, emotion_model=name).temperature == model_temperature(config, name)
    assert model_temperature(config, "/tmp/mine.pt") == 1.0
    assert len({model_temperature(config, name) for name in model_names(config)}) > 1
    broken = {**config, "classifier": {**config["classifier"], "models": {
        "mine": {**config["classifier"]["models"][config["classifier"]["model"]], "temperature": 0}}}}
    with pytest.raises(ValueError, match="temperature must be positive"):
        model_temperature(broken, "mine")
