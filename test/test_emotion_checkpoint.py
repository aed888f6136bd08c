"""Emotion model files: weights-only round trip with metadata, lineage stored once per ancestor, and clear errors
for missing or damaged files."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from fer_perception.emotion.checkpoint import ModelLoadError, ModelSpec, load_model, save_model
from fer_perception.emotion.labels import EMOTIONS
from fer_perception.emotion.network import build_network
from fer_perception.paths import share_dir

KWARGS = {"num_classes": 7, "in_channels": 1, "widths": [8, 16, 16, 32], "blocks": [1, 1, 1, 1], "dropout": 0.2}


def _spec() -> ModelSpec:
    return ModelSpec(architecture="fer_resnet", kwargs=KWARGS, labels=EMOTIONS, input_size=48, color="gray",
                     mean=0.51, std=0.25, training={"dataset": "FER2013", "seed": 3, "epoch": 7})


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    network = build_network("fer_resnet", **KWARGS).eval()
    path = tmp_path / "emotion.pt"
    save_model(path, network, _spec())
    return path, network


def test_round_trip_is_weights_only_and_keeps_metadata(saved: tuple[Path, torch.nn.Module]) -> None:
    path, network = saved
    content = torch.load(path, map_location="cpu", weights_only=True)
    assert content["spec"]["labels"] == list(EMOTIONS)
    assert content["spec"]["training"] == {"dataset": "FER2013", "seed": 3, "epoch": 7}
    assert "layer1.0.conv1.weight" in content["state_dict"] and "fc.weight" in content["state_dict"]
    loaded, spec = load_model(path)
    assert spec == _spec()
    assert not loaded.training
    faces = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(faces), network(faces), rtol=0, atol=0)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.pt"
    with pytest.raises(ModelLoadError, match="absent.pt"):
        load_model(path)


def test_corrupt_and_truncated_files_name_the_file(saved: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(saved[0].read_bytes()[:2000])
    for path in (garbage, truncated):
        with pytest.raises(ModelLoadError, match=path.name):
            load_model(path)


def test_foreign_or_inconsistent_files_are_rejected(saved: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ModelLoadError, match="foreign.pt"):
        load_model(foreign)
    content = torch.load(saved[0], weights_only=True)
    del content["state_dict"]["fc.weight"]
    damaged = tmp_path / "damaged.pt"
    torch.save(content, damaged)
    with pytest.raises(ModelLoadError, match="damaged.pt"):
        load_model(damaged)


def _stored_training(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["spec"]["training"]


def test_repeated_ancestors_are_stored_once_and_read_back_whole(saved: tuple[Path, torch.nn.Module],
                                                                 tmp_path: Path) -> None:
    """Four fine-tunes that start from and distil from the shipped model, souped: its record appears eight times
    in the soup's lineage but is stored once."""
    _, shipped = load_model(share_dir() / "models" / "emotion_fer2013.pt")
    fine_tunes = [{"seed": seed, "initialised_from": shipped.training, "distilled_from": [shipped.training]}
                  for seed in range(4)]
    spec = ModelSpec(**{**_spec().__dict__, "training": {"method": "soup", "souped_from": fine_tunes}})
    path = tmp_path / "soup.pt"
    save_model(path, saved[1], spec)
    stored = json.dumps(_stored_training(path), default=str)
    whole = json.dumps(spec.training, default=str)
    assert len(stored) < len(json.dumps(shipped.training, default=str)) + 1000 < len(whole) / 7
    assert stored.count('"same_as"') >= 7
    assert load_model(path)[1] == spec


def test_a_reference_to_no_earlier_record_is_rejected(saved: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    content = torch.load(saved[0], weights_only=True)
    content["spec"]["training"]["initialised_from"] = {"same_as": "/souped_from/0"}
    dangling = tmp_path / "dangling.pt"
    torch.save(content, dangling)
    with pytest.raises(ModelLoadError, match="dangling.pt"):
        load_model(dangling)


def test_saved_files_are_readable_as_the_umask_allows(saved: tuple[Path, torch.nn.Module]) -> None:
    umask = os.umask(0)
    os.umask(umask)
    assert saved[0].stat().st_mode & 0o777 == 0o666 & ~umask
