"""The learned AU estimator end to end on real faces: train with the CLI, load weights-only, select by name,
merge with geometry, and fail clearly on missing or corrupt checkpoints."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import media_path
from fer_perception.au.estimators import create_au_estimator
from fer_perception.au.geometry import GeometricAUEstimator, GeometryConfig
from fer_perception.au.learned import AUCheckpointError, LearnedAUEstimator, configured_checkpoints, load_checkpoint
from fer_perception.au.train_au import main as train_main
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig
from fer_perception.paths import config_path, share_dir
from fer_perception.types import AU_NUMBERS, HeadPose

GEOMETRY_CONFIG = config_path("action_units.yaml")
# Made-up but consistent labels: the smiling face has AU6/AU12/AU25 up; the others are mostly neutral.
SMILE_LABELS = {"AU01": 0.0, "AU2": 0.0, "AU06_r": 3.0, "au12": 4.0, "AU25": 2.0, "AU43": 0.0}
OTHER_LABELS = [{"AU01": 1.0, "AU2": 0.5, "AU06_r": 0.0, "au12": 0.5, "AU25": 0.0, "AU43": 0.0},
                {"AU01": 0.0, "AU2": 0.0, "AU06_r": 1.0, "au12": 1.5, "AU25": 1.0, "AU43": 0.0},
                {"AU01": 2.0, "AU2": 2.0, "AU06_r": 0.0, "au12": 0.0, "AU25": 3.0, "AU43": 1.0},
                {"AU01": 0.0, "AU2": 0.0, "AU06_r": 0.5, "au12": 1.0, "AU25": 0.0, "AU43": 0.0},
                {"AU01": 0.5, "AU2": 0.0, "AU06_r": 0.0, "au12": 0.0, "AU25": 0.5, "AU43": 0.0}]


class _NotAWeight:
    """An arbitrary object: pickling it into a checkpoint must make loading fail."""


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def detect(image: np.ndarray) -> list[tuple]:
    """(crop, landmarks, head pose, box) of every face in an image, from the face front end."""
    front_end = FaceFrontEnd(FaceFrontEndConfig(min_hits=1))
    try:
        return [(front_end.crop(image, face), face.landmarks, face.head_pose, face.box)
                for face in front_end.process(image, 0).faces]
    finally:
        front_end.close()


@pytest.fixture(scope="module")
def smile() -> tuple:
    faces = detect(read_rgb(media_path("single_face.jpg")))
    assert len(faces) == 1
    return faces[0]


def write_csv(path: Path, rows: list[dict]) -> Path:
    columns = list(rows[0])
    lines = [",".join(columns)] + [",".join(str(row[c]) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, smile) -> dict[str, Path]:
    """Three checkpoints trained with the CLI on real faces.

    ``disfa``: gray 96, AUs 1, 2, 6, 12, 25 from aligned crops (AU43's column is skipped);
    ``bp4d``: RGB 64, AUs 12 and 14 from whole images through the face front end (one has no face);
    ``tuned``: ``disfa`` fine-tuned with ``--init``.
    """
    root = tmp_path_factory.mktemp("au_learned")
    multi_image = read_rgb(media_path("multi_face.jpg"))
    multi = detect(multi_image)
    assert len(multi) == 5
    (root / "crops").mkdir()
    (root / "raw").mkdir()
    aligned_rows, raw_rows = [], [{"image": media_path("single_face.jpg"), "AU12": 4.0, "AU14": 1.0}]
    labelled = [(smile[0], SMILE_LABELS)] + [(face[0], labels) for face, labels in zip(multi, OTHER_LABELS)]
    for index, (crop, labels) in enumerate(labelled):
        cv2.imwrite(str(root / "crops" / f"face{index}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        aligned_rows.append({"image": f"crops/face{index}.png", **labels, "subject": f"s{index % 3}"})
    for index, (_, _, _, box) in enumerate(multi):
        x0, y0 = int(max(box.x - box.width, 0)), int(max(box.y - box.height, 0))
        region = multi_image[y0:int(box.y + 2 * box.height), x0:int(box.x + 2 * box.width)]
        cv2.imwrite(str(root / "raw" / f"face{index}.jpg"), cv2.cvtColor(region, cv2.COLOR_RGB2BGR))
        raw_rows.append({"image": f"raw/face{index}.jpg", "AU12": OTHER_LABELS[index]["au12"], "AU14": 0.5})
    cv2.imwrite(str(root / "raw" / "blank.png"), np.full((200, 200, 3), 128, np.uint8))
    raw_rows.append({"image": "raw/blank.png", "AU12": 0.0, "AU14": 0.0})
    aligned_csv = write_csv(root / "aligned.csv", aligned_rows)
    raw_csv = write_csv(root / "raw.csv", raw_rows)
    paths = {name: root / f"{name}.pt" for name in ("disfa", "bp4d", "tuned")}
    common = ["--batch-size", "4", "--quiet"]
    train_main([str(aligned_csv), "--out", str(paths["disfa"]), "--aligned", "--epochs", "2",
                "--val-fraction", "0.3", *common])
    train_main([str(raw_csv), "--out", str(paths["bp4d"]), "--channels", "3", "--input-size", "64",
                "--epochs", "1", "--val-fraction", "0", *common])
    train_main([str(aligned_csv), "--out", str(paths["tuned"]), "--aligned", "--init", str(paths["disfa"]),
                "--epochs", "1", "--seed", "1", *common])
    return paths


def config_with(tmp_path: Path, checkpoints: list, estimator: str = "geometry") -> Path:
    """A copy of the package's AU config selecting ``estimator`` with ``learned.checkpoints`` added."""
    config = yaml.safe_load(GEOMETRY_CONFIG.read_text())
    config["estimator"] = estimator
    config["learned"] = {"checkpoints": [str(path) for path in checkpoints]}
    path = tmp_path / "action_units.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_cli_writes_a_weights_only_checkpoint_with_metadata(checkpoints):
    content = torch.load(checkpoints["disfa"], weights_only=True)
    assert content["format"] == "fer_perception.au" and content["format_version"] == 1
    assert content["aus"] == [1, 2, 6, 12, 25]  # every learnable AU column; AU43 left to geometry
    assert (content["input_size"], content["channels"]) == (96, 1)
    assert len(content["mean"]) == len(content["std"]) == 1 and content["std"][0] > 0
    assert content["architecture"] == "au_net" and content["architecture_kwargs"]["num_aus"] == 5
    assert all(isinstance(tensor, torch.Tensor) for tensor in content["state_dict"].values())
    assert content["training"]["faces"] == 6 and content["training"]["val_faces"] >= 1
    assert content["training"]["val_mae"] is not None


def test_cli_finds_faces_in_whole_images_and_skips_images_without_one(checkpoints):
    model = load_checkpoint(checkpoints["bp4d"])
    assert model.aus == (12, 14) and (model.spec.size, model.spec.channels) == (64, 3)
    assert model.training["rows"] == 7 and model.training["faces"] == 6


def test_fine_tuning_keeps_the_format_and_changes_the_weights(checkpoints):
    base, tuned = load_checkpoint(checkpoints["disfa"]), load_checkpoint(checkpoints["tuned"])
    assert tuned.aus == base.aus and tuned.spec == base.spec
    assert tuned.training["init"] == str(checkpoints["disfa"])
    weight = "head.weight"
    assert not torch.equal(base.network.state_dict()[weight], tuned.network.state_dict()[weight])


def test_merge_rule_on_a_real_face(checkpoints, smile, tmp_path):
    crop, landmarks, head_pose, _ = smile
    estimator = create_au_estimator(config_with(tmp_path, [checkpoints["disfa"], checkpoints["bp4d"]]), "learned")
    assert isinstance(estimator, LearnedAUEstimator) and estimator.name == "learned" and estimator.needs_crop
    units = estimator.estimate("f0", landmarks, head_pose, crop)
    geometric = GeometricAUEstimator(GeometryConfig.from_yaml(GEOMETRY_CONFIG)).estimate("f0", landmarks, head_pose)
    disfa = dict(zip((1, 2, 6, 12, 25), load_checkpoint(checkpoints["disfa"]).predict(crop)))
    bp4d = dict(zip((12, 14), load_checkpoint(checkpoints["bp4d"]).predict(crop)))
    expected = {**{au: value for au, value in zip(AU_NUMBERS, geometric.intensity)}, **disfa, **bp4d,
                12: (disfa[12] + bp4d[12]) / 2}  # both networks predict AU12: their mean
    assert estimator.learned_aus == (1, 2, 6, 12, 14, 25)
    assert units.intensity == pytest.approx([expected[au] for au in AU_NUMBERS], abs=1e-6)
    assert units.estimated.all() and ((units.intensity >= 0) & (units.intensity <= 5)).all()
    assert units.value(43) == geometric.value(43)
    assert (units.left_eye_closure, units.right_eye_closure, units.eyes_estimated) == \
        (geometric.left_eye_closure, geometric.right_eye_closure, geometric.eyes_estimated)
    assert units.confidence == pytest.approx(geometric.confidence)
    assert estimator.fallback.tracks == 1
    estimator.drop("f0")
    assert estimator.fallback.tracks == 0


def test_a_far_turned_head_estimates_no_au_even_from_the_networks(checkpoints, smile):
    crop, landmarks, _, _ = smile
    estimator = LearnedAUEstimator([checkpoints["disfa"]], GeometricAUEstimator(GeometryConfig.from_yaml(
        GEOMETRY_CONFIG)))
    units = estimator.estimate("f0", landmarks, HeadPose(yaw=70.0), crop)
    assert not units.estimated.any() and (units.intensity == 0).all()


def test_needs_the_crop(checkpoints, smile):
    estimator = LearnedAUEstimator([checkpoints["disfa"]], GeometricAUEstimator(GeometryConfig.from_yaml(
        GEOMETRY_CONFIG)))
    with pytest.raises(ValueError, match="needs the aligned face crop"):
        estimator.estimate("f0", smile[1], smile[2])


def test_checkpoints_come_from_the_config_relative_to_the_share_folder(tmp_path):
    config = {"learned": {"checkpoints": ["models/au_disfa.pt", str(tmp_path / "mine.pt")]}}
    assert configured_checkpoints(config, tmp_path / "x.yaml") == [share_dir() / "models" / "au_disfa.pt",
                                                                   tmp_path / "mine.pt"]
    empty = config_with(tmp_path, [], estimator="learned")
    with pytest.raises(ValueError, match=f"no checkpoints configured under learned.checkpoints in {empty}"):
        create_au_estimator(empty)


def _write_bad_checkpoint(kind: str, path: Path, good: Path) -> None:
    if kind == "garbage":
        path.write_bytes(b"\x00not a checkpoint\xff" * 64)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "object":
        torch.save({"format": "fer_perception.au", "format_version": 1, "payload": _NotAWeight()}, path)
    elif kind == "not_au":
        torch.save({"weights": torch.zeros(3)}, path)
    elif kind == "inconsistent":
        content = torch.load(good, weights_only=True)
        torch.save({**content, "aus": [1, 2, 4]}, path)  # three AUs for a five-output network


@pytest.mark.parametrize("kind,message", [("missing", "not found"), ("garbage", "corrupt"), ("empty", "corrupt"),
                                          ("object", "objects other than tensors"),
                                          ("not_au", "not an AU checkpoint"), ("inconsistent", "inconsistent")])
def test_a_bad_checkpoint_is_a_clear_start_up_error_naming_the_file(kind, message, checkpoints, tmp_path):
    path = tmp_path / f"{kind}.pt"
    _write_bad_checkpoint(kind, path, checkpoints["disfa"])
    with pytest.raises(AUCheckpointError, match=message) as error:
        create_au_estimator(config_with(tmp_path, [checkpoints["bp4d"], path], estimator="learned"))
    assert str(path) in str(error.value)
