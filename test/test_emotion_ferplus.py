"""FER+ crowd votes as targets: the mapping onto the model's seven classes, ``fer-train --labels ferplus`` on a few
hundred real faces, and ``fer-evaluate``'s FER+ figures next to FER2013's."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, data_dir
from fer_perception.emotion import train
from fer_perception.emotion.checkpoint import load_model
from fer_perception.emotion.dataset import (FERPLUS_REFERENCE_CLASSES, DatasetError, ferplus_reference_labels,
                                            ferplus_targets, load_ferplus, load_ferplus_reference, load_npz)
from fer_perception.emotion.evaluate import main as evaluate_main
from fer_perception.emotion.evaluate import network_probabilities, predict_probabilities
from fer_perception.emotion.labels import EMOTIONS

MODEL = REPO / "models" / "emotion_fer2013.pt"
COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
"""FER+'s vote columns, in its order."""


def _votes(**counts: int) -> list[int]:
    """One face's votes per :data:`COLUMNS` from counts by column name."""
    return [counts.get(column, 0) for column in COLUMNS]


@pytest.fixture(scope="module")
def small_votes(small_fer: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The FER+ votes of ``small_fer``'s faces (the first faces of each FER2013 split), row-aligned to it."""
    fer_path, votes_path = data_dir() / "fer2013" / "fer2013.npz", data_dir() / "ferplus" / "ferplus_votes.npz"
    for path in (fer_path, votes_path):
        if not path.is_file():
            pytest.fail(f"test data missing: {path} (set FER_DATA_DIR to the shared data folder)")
    with np.load(fer_path) as data, np.load(small_fer) as small, np.load(votes_path) as ferplus:
        rows = np.concatenate([np.flatnonzero(data["split"] == index)[:int((small["split"] == index).sum())]
                               for index in range(3)])
        assert np.array_equal(data["images"][rows], small["images"])
        path = tmp_path_factory.mktemp("ferplus") / "small_votes.npz"
        np.savez(path, votes=ferplus["votes"][rows], columns=ferplus["columns"], labelled=ferplus["labelled"][rows])
    return path


def test_votes_become_distributions_over_the_seven_classes() -> None:
    votes = np.array([
        _votes(happiness=6, surprise=3, neutral=1),          # kept as it is, reordered to FER2013's classes
        _votes(anger=4, disgust=2, contempt=4),              # contempt dropped, renormalised over 6 votes
        _votes(sadness=4, unknown=5, NF=1),                  # 6 of 10 unknown/NF: dropped
        _votes(fear=5, unknown=4, NF=1),                     # exactly half unknown/NF: kept
        _votes(contempt=9, unknown=1),                       # only contempt among the emotions: dropped
        _votes(neutral=10),                                  # FER+ did not label it: dropped
        _votes(sadness=3, anger=3, neutral=2, fear=2),       # a tie: the first in FER2013 order (angry) wins
    ])
    labelled = np.array([True, True, True, True, True, False, True])
    targets = ferplus_targets(votes, COLUMNS, labelled)
    expected = np.zeros((7, 7), np.float32)
    expected[0, [EMOTIONS.index("happy"), EMOTIONS.index("surprise"), EMOTIONS.index("neutral")]] = (0.6, 0.3, 0.1)
    expected[1, [EMOTIONS.index("angry"), EMOTIONS.index("disgust")]] = (4 / 6, 2 / 6)
    expected[3, EMOTIONS.index("fear")] = 1.0
    expected[6, [EMOTIONS.index(name) for name in ("sad", "angry", "neutral", "fear")]] = (0.3, 0.3, 0.2, 0.2)
    np.testing.assert_allclose(targets.distributions, expected, rtol=1e-6)
    assert targets.keep.tolist() == [True, True, False, True, False, False, True]
    assert targets.majority.tolist() == [EMOTIONS.index("happy"), EMOTIONS.index("angry"), -1,
                                         EMOTIONS.index("fear"), -1, -1, EMOTIONS.index("angry")]
    # Column order and spelling come from the file, not from position.
    shuffled = ferplus_targets(votes[:, ::-1], COLUMNS[::-1], labelled)
    np.testing.assert_array_equal(shuffled.distributions, targets.distributions)
    with pytest.raises(ValueError, match="lack.*'fear'"):
        ferplus_targets(votes[:, :6], COLUMNS[:6], labelled)


def test_reference_protocol_keeps_only_clear_majorities_as_the_ferplus_authors_do() -> None:
    votes = np.array([
        _votes(happiness=6, surprise=3, neutral=1),          # neutral's single vote dropped: 6 of 9
        _votes(anger=5, disgust=5),                          # 5 of 10 is not more than half: left out
        _votes(contempt=6, neutral=4),                       # contempt is one of the eight classes
        _votes(sadness=4, unknown=6),                        # the majority reads no emotion: left out
        _votes(sadness=5, fear=1, anger=1, disgust=1, neutral=1, surprise=1),  # single votes dropped: 5 of 5
        _votes(sadness=4, anger=3, neutral=3),               # 4 of 10: left out (our rules keep it, as sad)
        _votes(fear=5, unknown=2, NF=3),                     # unknown and NF votes count in the total: left out
        _votes(neutral=10),                                  # FER+ did not label it: left out
    ])
    labelled = np.array([True] * 7 + [False])
    expected = [FERPLUS_REFERENCE_CLASSES.index(name) if name else -1
                for name in ("happy", None, "contempt", None, "sad", None, None, None)]
    assert ferplus_reference_labels(votes, COLUMNS, labelled).tolist() == expected
    with pytest.raises(ValueError, match="contempt"):
        ferplus_reference_labels(votes[:, :7], COLUMNS[:7], labelled)


def test_votes_file_must_be_row_aligned_to_the_dataset(small_fer: Path, small_votes: Path, tmp_path: Path) -> None:
    val = load_ferplus(small_votes, small_fer, "val")
    assert len(val.keep) == len(load_npz(small_fer, "val")) == 64
    short = tmp_path / "short.npz"
    with np.load(small_votes) as content:
        np.savez(short, **{name: content[name][:-1] if name != "columns" else content[name] for name in content.files})
    with pytest.raises(DatasetError, match="short.npz.*not row-aligned"):
        load_ferplus(short, small_fer, "val")
    with pytest.raises(DatasetError, match="FER\\+ votes file not found.*nothing.npz"):
        load_ferplus(tmp_path / "nothing.npz", small_fer)


def test_training_on_ferplus_votes_reports_both_val_accuracies_and_resumes_only_with_them(
        small_fer: Path, small_votes: Path, tmp_path: Path, capsys) -> None:
    command = ["--data", str(small_fer), "--out", str(tmp_path), "--labels", "ferplus", "--ferplus", str(small_votes),
               "--epochs", "2", "--batch-size", "64", "--widths", "8", "16", "32", "64", "--score-test"]
    assert train.main([*command, "--stop-after", "1"]) == 0
    assert "val FER+ majority acc" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="trained with --labels ferplus.*--labels fer2013"):
        train.main(["--data", str(small_fer), "--out", str(tmp_path), "--epochs", "2", "--batch-size", "64",
                    "--widths", "8", "16", "32", "64", "--score-test", "--resume"])
    assert train.main([*command, "--resume"]) == 0

    report = json.loads((tmp_path / "report.json").read_text())
    kept = {split: load_ferplus(small_votes, small_fer, split).keep for split in ("val", "test")}
    assert report["targets"]["labels"] == "ferplus" and report["targets"]["rules"]["max_uncertain_share"] == 0.5
    assert report["targets"]["train_faces"] == int(load_ferplus(small_votes, small_fer, "train").keep.sum())
    assert report["config"]["ferplus"] == str(small_votes) and report["selected_by"] == "val FER+ majority accuracy"
    assert report["val"]["count"] == 64 and report["val_ferplus"]["count"] == int(kept["val"].sum())
    assert report["test_ferplus"]["count"] == int(kept["test"].sum())
    best = report["history"][report["best_epoch"] - 1]
    assert report["val_ferplus"]["accuracy"] == pytest.approx(best["val_ferplus_majority_accuracy"])
    assert report["val"]["accuracy"] == pytest.approx(best["val_accuracy"])  # FER2013 labels, all val faces
    assert {"ece", "macro_f1", "recall"} <= set(report["val_ferplus"])

    _, spec = load_model(tmp_path / "best.pt")  # weights-only, as every model file
    assert spec.training["targets"] == report["targets"] and spec.training["config"]["labels"] == "ferplus"
    assert spec.training["val_ferplus_majority_accuracy"] == best["val_ferplus_majority_accuracy"]
    assert spec.training["val_accuracy"] == best["val_accuracy"]


def test_soft_targets_are_the_kept_faces_vote_distributions(small_fer: Path, small_votes: Path) -> None:
    splits = {split: load_npz(small_fer, split) for split in ("train", "val")}
    ferplus = {split: load_ferplus(small_votes, small_fer, split) for split in splits}
    images, targets = train._training_set(splits, ferplus, ("train", "val"))
    assert len(images) == len(targets) == sum(int(ferplus[split].keep.sum()) for split in splits)
    assert targets.shape[1] == len(EMOTIONS) and torch.allclose(targets.sum(1), torch.ones(len(targets)))
    with pytest.raises(SystemExit):
        train.parse_args(["--ferplus", str(small_votes)])  # FER+ votes without --labels ferplus


def test_evaluate_reports_fer2013_and_ferplus_side_by_side(small_fer: Path, small_votes: Path, tmp_path: Path,
                                                           capsys) -> None:
    if not MODEL.is_file():
        pytest.fail(f"shipped emotion model missing: {MODEL}")
    report = tmp_path / "report.json"
    assert evaluate_main([str(small_fer), "--model", str(MODEL), "--ferplus", str(small_votes),
                          "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert ["small", "FER+", "FER+ref"] in [line.split() for line in printed.splitlines()]  # the columns' headings
    assert "ECE (15 bins, top-1)" in printed and "macro-F1" in printed
    assert "confusion matrix, small" in printed and "confusion matrix, FER+ref" in printed
    assert "FER+ref, the FER+ authors' protocol" in printed

    result = json.loads(report.read_text())
    test_faces = load_npz(small_fer, "test")
    targets = load_ferplus(small_votes, small_fer, "test")
    network, spec = load_model(MODEL)
    probabilities = predict_probabilities(network_probabilities(network, spec.mean, spec.std), test_faces.images)
    predicted = probabilities.argmax(1)
    assert result["accuracy"] == pytest.approx(float((predicted == test_faces.labels).mean()))
    ferplus = result["ferplus"]
    assert ferplus["count"] == int(targets.keep.sum()) and ferplus["dropped"] == int((~targets.keep).sum())
    assert ferplus["accuracy"] == pytest.approx(float((predicted == targets.majority)[targets.keep].mean()))
    reference = result["ferplus_reference"]
    labels = load_ferplus_reference(small_votes, small_fer, "test")
    kept = labels >= 0
    assert 0 < reference["count"] == int(kept.sum()) < len(labels) and reference["dropped"] == int((~kept).sum())
    contempt = labels == FERPLUS_REFERENCE_CLASSES.index("contempt")
    assert reference["counted_wrong"] == {"contempt": int(contempt.sum())}
    hits = (predicted == labels)[kept & ~contempt].sum()  # the model's class indices are EMOTIONS'
    assert reference["accuracy"] == pytest.approx(hits / kept.sum())
    assert reference["accuracy_known_classes"] == pytest.approx(hits / (kept & ~contempt).sum())
    for figures in (result, ferplus, reference):
        assert 0.0 < figures["ece"] < 1.0 and figures["ece_bins"] == 15
        assert 0.0 < figures["macro_f1"] <= 1.0 and set(figures["recall"]) == set(EMOTIONS)

    capsys.readouterr()
    with pytest.raises(SystemExit):
        evaluate_main([str(small_fer), "--ferplus", str(small_votes), "--no-ferplus"])
    assert "not allowed with argument --ferplus" in capsys.readouterr().err


def test_fer2013_gets_the_shared_votes_by_default(small_fer: Path, tmp_path: Path, capsys) -> None:
    if not MODEL.is_file():
        pytest.fail(f"shipped emotion model missing: {MODEL}")
    named = tmp_path / "fer2013.npz"  # the file name FER+ is aligned to, but only a few hundred of its rows
    named.write_bytes(small_fer.read_bytes())
    assert evaluate_main([str(named), "--model", str(MODEL)]) == 2
    assert "not row-aligned" in capsys.readouterr().err
    report = tmp_path / "report.json"
    assert evaluate_main([str(named), "--model", str(MODEL), "--no-ferplus", "--json", str(report)]) == 0
    assert "ferplus" not in json.loads(report.read_text())
