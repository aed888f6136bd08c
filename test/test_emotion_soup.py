"""fer-soup on small models fine-tuned from one base on real FER2013 faces: the mean, its statistics (recomputed or
averaged), the greedy choice by val, and refusal of models that cannot be averaged."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import assert_stem_statistics_are_those_of_the_train_faces
from fer_perception.emotion.checkpoint import load_model
from fer_perception.emotion.dataset import load_npz
from fer_perception.emotion.evaluate import network_probabilities, predict_probabilities
from fer_perception.emotion.soup import main as soup_main
from fer_perception.emotion.train import main as train_main

WIDTHS = ("--widths", "8", "16", "32", "64")


def _train(data: Path, out: Path, *extra: str) -> Path:
    assert train_main(["--data", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "64", *WIDTHS,
                       *extra]) == 0
    return out / "best.pt"


@pytest.fixture(scope="module")
def fine_tuned(small_fer: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three one-epoch fine-tunes (seeds 1-3) of one base model."""
    root = tmp_path_factory.mktemp("soup_models")
    base = _train(small_fer, root / "base")
    return [_train(small_fer, root / f"seed{seed}", "--init", str(base), "--lr", "0.05", "--seed", str(seed))
            for seed in (1, 2, 3)]


def _val_accuracy(path: Path, data: Path) -> float:
    network, spec = load_model(path)
    val = load_npz(data, "val")
    return float((predict_probabilities(network_probabilities(network, spec.mean, spec.std), val.images).argmax(1)
                  == val.labels).mean())


def test_uniform_soup_is_the_mean_of_the_weights_with_recomputed_statistics(small_fer: Path, fine_tuned: list[Path],
                                                                           tmp_path: Path) -> None:
    out = tmp_path / "soup.pt"
    assert soup_main([*map(str, fine_tuned), "--out", str(out), "--data", str(small_fer), "--threads", "1"]) == 0
    soup, spec = load_model(out)
    ingredients = [load_model(path) for path in fine_tuned]
    for name, parameter in soup.named_parameters():
        mean = torch.stack([network.state_dict()[name] for network, _ in ingredients]).mean(0)
        assert torch.allclose(parameter, mean, atol=1e-6), name
    assert_stem_statistics_are_those_of_the_train_faces(soup, spec, small_fer)
    assert spec.training["kept"] == [str(path) for path in fine_tuned]
    assert spec.training["souped_from"] == [ingredient_spec.training for _, ingredient_spec in ingredients]
    assert spec.training["val_accuracy"] == pytest.approx(_val_accuracy(out, small_fer))
    assert (spec.labels, spec.kwargs, spec.mean) == (ingredients[0][1].labels, ingredients[0][1].kwargs,
                                                     ingredients[0][1].mean)


def test_soup_with_averaged_statistics_keeps_the_mean_of_the_models_statistics(small_fer: Path,
                                                                              fine_tuned: list[Path],
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "soup.pt"
    assert soup_main([*map(str, fine_tuned), "--out", str(out), "--data", str(small_fer), "--batch-norm", "average",
                      "--threads", "1"]) == 0
    soup, spec = load_model(out)
    states = [load_model(path)[0].state_dict() for path in fine_tuned]
    statistics = [name for name in soup.state_dict() if name.endswith(("running_mean", "running_var"))]
    assert statistics
    for name in statistics:
        assert torch.allclose(soup.state_dict()[name], torch.stack([state[name] for state in states]).mean(0),
                              atol=1e-6), name
    assert not torch.allclose(soup.state_dict()[statistics[0]], states[0][statistics[0]])
    assert spec.training["batch_norm_statistics"] == "mean of the models'"
    assert spec.training["val_accuracy"] == pytest.approx(_val_accuracy(out, small_fer))


def test_weighted_soup_interpolates_weights_and_statistics_and_refuses_bad_weights(
        small_fer: Path, fine_tuned: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "interpolated.pt"
    pair = fine_tuned[:2]
    assert soup_main([*map(str, pair), "--out", str(out), "--data", str(small_fer), "--batch-norm", "average",
                      "--weights", "3", "1", "--threads", "1"]) == 0
    soup, spec = load_model(out)
    first, second = (load_model(path)[0].state_dict() for path in pair)
    for name, tensor in soup.state_dict().items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, 0.75 * first[name] + 0.25 * second[name], atol=1e-6), name
    assert spec.training["weights"] == [3.0, 1.0] and spec.training["selected_by"] == "none (weighted soup)"
    for bad in (["--weights", "1"], ["--weights", "1", "-1"], ["--weights", "1", "1", "--greedy"]):
        with pytest.raises(SystemExit) as refused:
            soup_main([*map(str, pair), "--out", str(tmp_path / "bad.pt"), "--data", str(small_fer), *bad])
        assert refused.value.code == 2
    assert not (tmp_path / "bad.pt").exists()


def test_greedy_soup_starts_from_the_best_model_and_never_loses_val_accuracy(small_fer: Path, fine_tuned: list[Path],
                                                                            tmp_path: Path) -> None:
    out = tmp_path / "greedy.pt"
    assert soup_main([*map(str, fine_tuned), "--out", str(out), "--data", str(small_fer), "--greedy",
                      "--threads", "1"]) == 0
    _, spec = load_model(out)
    scores = [_val_accuracy(path, small_fer) for path in fine_tuned]
    assert spec.training["models_val_accuracy"] == pytest.approx(scores)
    assert spec.training["kept"][0] == str(fine_tuned[scores.index(max(scores))])
    assert spec.training["val_accuracy"] >= max(scores)
    assert spec.training["val_accuracy"] == pytest.approx(_val_accuracy(out, small_fer))


def test_models_of_other_kinds_are_refused_by_name(small_fer: Path, fine_tuned: list[Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    wider = _train(small_fer, tmp_path / "wider", "--widths", "8", "16", "32", "96")
    assert soup_main([str(fine_tuned[0]), str(wider), "--out", str(tmp_path / "x.pt"), "--data", str(small_fer)]) == 2
    assert str(wider) in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_soup_of_models_refit_on_val_is_recorded_as_trained_on_val_and_never_chosen_by_it(
        small_fer: Path, fine_tuned: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = fine_tuned[0].parent.parent / "base" / "best.pt"
    refit = _train(small_fer, tmp_path / "refit", "--init", str(base), "--lr", "0.05", "--seed", "4", "--train-on-val")
    capsys.readouterr()
    out = tmp_path / "soup.pt"
    assert soup_main([str(fine_tuned[0]), str(refit), "--out", str(out), "--data", str(small_fer),
                      "--batch-norm", "average", "--threads", "1"]) == 0
    assert "(trained on)" in capsys.readouterr().out
    assert load_model(out)[1].training["train_split"] == "train+val"
    assert soup_main([str(fine_tuned[0]), str(refit), "--out", str(tmp_path / "greedy.pt"), "--data", str(small_fer),
                      "--greedy", "--threads", "1"]) == 2
    assert str(refit) in capsys.readouterr().err
    assert not (tmp_path / "greedy.pt").exists()
    assert soup_main([*map(str, fine_tuned), "--out", str(tmp_path / "held_out.pt"), "--data", str(small_fer),
                      "--batch-norm", "average", "--threads", "1"]) == 0
    assert load_model(tmp_path / "held_out.pt")[1].training["train_split"] == "train"
