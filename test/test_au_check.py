"""fer-au-check on real faces: the table and its JSON, faces first seen expressive keep their AUs, and the shared
clips' neutral openings read no AU above 1 and open no episode."""
from __future__ import annotations

import json

import pytest

from conftest import data_dir
from fer_perception.au.check import AU_NUMBERS, main


@pytest.fixture(scope="module")
def check(tmp_path_factory) -> tuple[dict, str]:
    for path in (data_dir() / "fer2013" / "fer2013.npz", data_dir() / "ferplus" / "ferplus_votes.npz"):
        if not path.is_file():
            pytest.fail(f"test data missing: {path} (set FER_DATA_DIR to the shared data folder)")
    out = tmp_path_factory.mktemp("au_check") / "check.json"
    capture = pytest.MonkeyPatch()
    lines: list[str] = []
    capture.setattr("builtins.print", lambda *args, **kwargs: lines.append(" ".join(map(str, args))))
    try:
        main(["--split", "val", "--limit", "400", "--per-class", "3", "--json", str(out)])
    finally:
        capture.undo()
    return json.loads(out.read_text()), "\n".join(lines)


def test_the_table_lists_every_au_with_its_figures(check):
    figures, table = check
    for au in AU_NUMBERS:
        assert f"AU{au:<3d}" in table
    assert figures["split"] == "val" and figures["faces"] >= 300
    assert all(0.0 <= v["auc"] <= 1.0 for v in figures["proxy_auc"].values())
    assert set(figures["openface_r"]) == {"single_face", "noface_face"}
    assert figures["proxy_auc"]["AU12"]["auc"] > 0.85, "AU12 must separate happy faces clearly"


def test_faces_first_seen_expressive_keep_their_aus(check):
    retained = check[0]["held_retained"]
    for key in ("anger AU4", "sadness AU1", "sadness AU15", "happiness AU12", "surprise AU2"):
        assert retained[key] >= 0.8, f"{key}: only {retained[key]:.2f} of the first reading left after 4 s"


def test_the_clips_neutral_openings_read_no_au_above_one_and_open_no_episode(check):
    openings = check[0]["neutral_openings"]
    assert set(openings) == {"single_face", "noface_face"}
    for clip, opening in openings.items():
        assert opening["frames"] >= 8, clip
        assert opening["max_au"] <= 1.0, f"{clip}: AU{opening['max_au_number']:.0f} reads {opening['max_au']:.2f}"
        assert opening["episodes"] == 0, clip


def test_au12_and_au25_move_with_openface_at_the_clips_expression_changes(check):
    direction = check[0]["direction"]
    for au in ("AU12", "AU25", "AU6"):
        assert direction[au]["moves"] >= 2 and direction[au]["agree"] == direction[au]["moves"], (au, direction[au])
