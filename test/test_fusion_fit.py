"""fer-fit-fusion on the first val faces of FER2013: one row per FACS weight with figures that follow from the
fused predictions, the best FER+ macro-F1 chosen, the landmark-assisted trial reported, test never offered."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import data_dir
from fer_perception.emotion.fusion_fit import FACS_WEIGHTS, best_weight, main


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
    assert "best FER+ macro-F1 at FACS weight" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--split", "test"])
    assert main(["--model", "vgg13"]) == 2
