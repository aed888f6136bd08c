"""fer-evaluate on small datasets written from FER2013: other sizes and colour, other class spellings,
a class the model lacks (reported and excluded), split selection, JSON output, several models side by side, and the
expected calibration error (FER+ figures: test_emotion_ferplus.py)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, data_dir
from fer_perception.emotion.checkpoint import load_model
from fer_perception.emotion.evaluate import (expected_calibration_error, main, network_probabilities,
                                             predict_probabilities)
from fer_perception.emotion.fusion import coarse_to_fine_label

MODEL = REPO / "models" / "emotion_fer2013.pt"
SPELLINGS = ["Anger", "DISGUST", "fear", "Happiness", "sadness", "Surprised", "Neutral", "contempt"]
"""FER2013's classes spelled as other datasets do, plus one the model does not have."""


@pytest.fixture(scope="module")
def fer_test() -> tuple[np.ndarray, np.ndarray]:
    """The first 70 test-split faces of FER2013 and their labels."""
    path = data_dir() / "fer2013" / "fer2013.npz"
    if not path.is_file():
        pytest.fail(f"test data missing: {path} (set FER_DATA_DIR to the shared data folder)")
    if not MODEL.is_file():
        pytest.fail(f"shipped emotion model missing: {MODEL}")
    with np.load(path) as data:
        keep = np.flatnonzero(data["split"] == 2)[:70]
        return data["images"][keep], data["labels"][keep].astype(np.int64)


def test_aliases_colour_resize_and_unknown_class(fer_test, tmp_path: Path, capsys) -> None:
    faces, labels = fer_test
    colour = np.stack([cv2.cvtColor(cv2.resize(face, (96, 96), interpolation=cv2.INTER_LINEAR), cv2.COLOR_GRAY2RGB)
                       for face in faces])
    labels_with_contempt = labels.copy()
    labels_with_contempt[:6] = 7  # six faces of a class the model does not know
    data = tmp_path / "other.npz"
    np.savez(data, images=colour, labels=labels_with_contempt, classes=np.array(SPELLINGS))
    report = tmp_path / "report.json"

    assert main([str(data), "--json", str(report), "--model", str(MODEL)]) == 0
    printed = capsys.readouterr().out
    assert "'contempt' (6 faces)" in printed and "excluded" in printed
    for row in ("accuracy", "macro-F1", "ECE (15 bins, top-1)", "recall disgust", "confusion matrix"):
        assert row in printed

    result = json.loads(report.read_text())
    assert result["excluded_classes"] == {"contempt": 6}
    assert result["count"] == 64 and result["split"] is None
    network, spec = load_model(MODEL)
    classify = network_probabilities(network, spec.mean, spec.std)
    expected = predict_probabilities(classify, faces[6:]).argmax(1)
    # Colour 96 px faces come back to the same 48 px gray faces up to resampling, so predictions nearly agree.
    assert abs(result["accuracy"] - float((expected == labels[6:]).mean())) <= 5 / 64
    assert sum(map(sum, result["confusion"])) == 64
    cascade = [coarse_to_fine_label(p) for p in predict_probabilities(classify, faces[6:])]
    assert abs(result["coarse_to_fine_accuracy"] - float((np.array(cascade) == labels[6:]).mean())) <= 5 / 64
    assert set(result["recall"]) == set(spec.labels)
    assert "ferplus" not in result and 0.0 < result["ece"] < 1.0  # a dataset without FER+ votes: its own labels


def test_split_selection_and_tta(fer_test, tmp_path: Path, capsys) -> None:
    faces, labels = fer_test
    split = np.arange(len(faces)) % 2
    data = tmp_path / "split.npz"
    np.savez(data, images=faces, labels=labels, classes=np.array(SPELLINGS[:7]), split=split,
             split_names=np.array(["val", "test"]))
    report = tmp_path / "report.json"
    assert main([str(data), "--split", "val", "--tta", "--json", str(report), "--model", str(MODEL)]) == 0
    result = json.loads(report.read_text())
    assert (result["split"], result["count"], result["tta"]) == ("val", 35, True)
    network, spec = load_model(MODEL)
    expected = predict_probabilities(network_probabilities(network, spec.mean, spec.std), faces[split == 0], tta=True).argmax(1)
    assert result["accuracy"] == pytest.approx(float((expected == labels[split == 0]).mean()))
    assert "flip TTA" in capsys.readouterr().out


def test_missing_dataset_or_model_is_named(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "nothing.npz"), "--model", str(MODEL)]) == 2
    assert "nothing.npz" in capsys.readouterr().err
    data = tmp_path / "tiny.npz"
    np.savez(data, images=np.zeros((2, 48, 48), np.uint8), labels=np.zeros(2, np.int64), classes=np.array(["angry"]))
    assert main([str(data), "--model", str(tmp_path / "nomodel.pt")]) == 2
    assert "nomodel.pt" in capsys.readouterr().err


def test_backend_scores_the_model_as_the_node_runs_it(fer_test, tmp_path: Path, capsys) -> None:
    faces, labels = fer_test
    data = tmp_path / "faces.npz"
    np.savez(data, images=faces, labels=labels, classes=np.array(SPELLINGS[:7]))
    results = {}
    for backend in (None, "onnxruntime", "onnxruntime_int8"):
        report = tmp_path / f"{backend}.json"
        assert main([str(data), "--model", str(MODEL), "--json", str(report),
                     *(("--backend", backend) if backend else ())]) == 0
        results[backend] = json.loads(report.read_text())
    assert results[None]["backend"] == "torch (as trained)" and results["onnxruntime_int8"]["backend"] == "onnxruntime_int8"
    assert results["onnxruntime"]["confusion"] == results[None]["confusion"]
    assert abs(results["onnxruntime_int8"]["accuracy"] - results[None]["accuracy"]) <= 3 / 70
    capsys.readouterr()
    assert main([str(data), "--model", str(MODEL), "--backend", "tensorrt"]) == 2
    assert "tensorrt" in capsys.readouterr().err


def test_several_models_are_columns_side_by_side(fer_test, tmp_path: Path, capsys) -> None:
    faces, labels = fer_test
    data = tmp_path / "faces.npz"
    np.savez(data, images=faces, labels=labels, classes=np.array(SPELLINGS[:7]))
    single, both = tmp_path / "single.json", tmp_path / "both.json"
    assert main([str(data), "--model", str(MODEL), "--json", str(single)]) == 0
    capsys.readouterr()
    assert main([str(data), "--model", str(MODEL), "--model", str(MODEL), "--json", str(both)]) == 0
    printed = capsys.readouterr().out
    assert ["[1]", "faces", "[2]", "faces"] in [line.split() for line in printed.splitlines()]
    accuracy = next(line.split() for line in printed.splitlines() if line.startswith("accuracy"))
    assert accuracy[1] == accuracy[2] and "confusion matrix" not in printed  # matrices only for one model
    assert json.loads(both.read_text()) == {"models": [json.loads(single.read_text())] * 2}


def test_expected_calibration_error_is_zero_when_confidence_is_accuracy_and_hand_computed_otherwise() -> None:
    def confident(top: float, count: int) -> np.ndarray:
        """``count`` faces whose top probability, ``top``, is on class 0 of 4."""
        return np.tile([top, *[(1.0 - top) / 3] * 3], (count, 1))

    # 10 faces at 0.8 of which 8 are right and 4 at 0.5 of which 2 are: calibrated in both bins.
    calibrated = np.concatenate([confident(0.8, 10), confident(0.5, 4)])
    true = np.array([0] * 8 + [1] * 2 + [0] * 2 + [2] * 2)
    assert expected_calibration_error(calibrated, true) == pytest.approx(0.0, abs=1e-12)
    # Bin [0.933, 1): 0.95 and 0.97, one right: |0.5 - 0.96| = 0.46, 2 of 5 faces -> 0.184.
    # Bin [0.6, 0.667): 0.62, right: |1 - 0.62| = 0.38, 1 of 5 -> 0.076.
    # Bin [0.267, 0.333): 0.3 and 0.28, both wrong: |0 - 0.29| = 0.29, 2 of 5 -> 0.116.
    probabilities = np.array([[0.95, 0.05, 0.0, 0.0], [0.97, 0.03, 0.0, 0.0], [0.62, 0.38, 0.0, 0.0],
                              [0.3, 0.25, 0.25, 0.2], [0.28, 0.24, 0.24, 0.24]])
    true = np.array([0, 1, 0, 3, 2])
    assert expected_calibration_error(probabilities, true) == pytest.approx(0.184 + 0.076 + 0.116)
    assert expected_calibration_error(np.zeros((0, 4)), np.zeros(0, np.int64)) == 0.0
