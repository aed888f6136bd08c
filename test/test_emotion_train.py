"""fer-train on a few hundred real FER2013 faces: outputs, that --resume continues exactly, and distillation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_stem_statistics_are_those_of_the_train_faces
from fer_perception.emotion.checkpoint import load_model
from fer_perception.emotion.dataset import load_npz
from fer_perception.emotion.network import build_network
from fer_perception.emotion import train
from fer_perception.emotion.train import TeacherEnsemble, distillation_loss, main, parse_args


def _train(data: Path, out: Path, *extra: str) -> None:
    assert main(["--data", str(data), "--out", str(out), "--epochs", "2", "--batch-size", "64", "--seed", "5",
                 *extra]) == 0


@pytest.fixture(scope="module")
def small_teacher(small_fer: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A narrow model trained one epoch on ``small_fer``, to distil from."""
    out = tmp_path_factory.mktemp("teacher")
    _train(small_fer, out, "--stop-after", "1", "--widths", "8", "16", "32", "64")
    return out / "best.pt"


@pytest.mark.parametrize("average", [(), ("--ema-decay", "0.9"), ("--swa",)], ids=["plain", "weight_average", "swa"])
def test_resume_continues_like_an_uninterrupted_run(small_fer: Path, tmp_path: Path, capsys,
                                                   average: tuple[str, ...]) -> None:
    _train(small_fer, tmp_path / "whole", *average)
    _train(small_fer, tmp_path / "split", "--stop-after", "1", *average)
    assert not (tmp_path / "split" / "report.json").exists()
    _train(small_fer, tmp_path / "split", "--resume", *average)
    out = capsys.readouterr().out
    assert "resuming at epoch 2/2" in out and "val: accuracy" in out and "test: accuracy" not in out

    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert whole["epoch"] == split["epoch"] == 2
    assert whole["history"] == split["history"]
    for key in ("model", "average") if average else ("model",):
        for name, tensor in whole[key].items():
            assert torch.equal(tensor, split[key][name]), f"{key} {name}"

    report = json.loads((tmp_path / "split" / "report.json").read_text())
    assert report == {**json.loads((tmp_path / "whole" / "report.json").read_text()),
                      "train_time_s": report["train_time_s"]}
    assert "test" not in report and "test_tta" not in report  # scored only with --score-test
    for key in ("val", "val_tta"):
        assert report[key]["count"] == 64
        assert set(report[key]) >= {"accuracy", "macro_f1", "recall", "confusion"}
    network, spec = load_model(tmp_path / "split" / "best.pt")
    assert spec.training["epoch"] == report["best_epoch"] and spec.training["seed"] == 5
    assert sum(parameter.numel() for parameter in network.parameters()) > 0


def test_weight_average_is_the_saved_model(small_fer: Path, tmp_path: Path) -> None:
    assert main(["--data", str(small_fer), "--out", str(tmp_path), "--epochs", "1", "--batch-size", "64",
                 "--ema-decay", "0.9"]) == 0
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    network, _ = load_model(tmp_path / "best.pt")
    saved = network.state_dict()
    averaged = {name.removeprefix("module."): tensor for name, tensor in state["average"].items()}
    assert all(torch.equal(saved[name], averaged[name]) for name in saved)
    assert not all(torch.equal(saved[name], state["model"][name]) for name in saved)


def test_swa_saves_the_mean_of_the_epochs_weights_with_their_own_batch_norm_statistics(
        small_fer: Path, tmp_path: Path) -> None:
    _train(small_fer, tmp_path, "--swa", "--lr", "0.05", "--warmup-epochs", "0", "--stop-after", "1")
    first = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    _train(small_fer, tmp_path, "--swa", "--lr", "0.05", "--warmup-epochs", "0", "--resume")
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert [epoch["lr"] for epoch in state["history"]] == [0.05, 0.05]
    assert int(state["average"]["n_averaged"]) == 2
    network, spec = load_model(tmp_path / "best.pt")
    averaged = network.state_dict() if spec.training["epoch"] == 2 else None
    network.load_state_dict({name.removeprefix("module."): tensor for name, tensor in state["average"].items()
                             if name != "n_averaged"})
    for name, parameter in network.named_parameters():
        assert torch.allclose(parameter, (first[name] + state["model"][name]) / 2, atol=1e-6), name
        if averaged is not None:
            assert torch.equal(parameter, averaged[name]), name

    assert_stem_statistics_are_those_of_the_train_faces(network, spec, small_fer)
    assert not torch.allclose(network.bn1.running_mean, first["bn1.running_mean"], atol=1e-4)

    with pytest.raises(SystemExit):
        _train(small_fer, tmp_path / "both", "--swa", "--ema-decay", "0.9")


@pytest.mark.parametrize("native", [True, False])
def test_bfloat16_autocast_defaults_to_what_the_cpu_computes_natively(monkeypatch: pytest.MonkeyPatch,
                                                                     native: bool) -> None:
    monkeypatch.setattr(train, "cpu_has_bfloat16", lambda: native)
    assert parse_args([]).bf16 is native
    assert parse_args(["--bf16"]).bf16 is True
    assert parse_args(["--no-bf16"]).bf16 is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where torch sees no GPU")
def test_cuda_without_a_gpu_is_a_clear_error_and_auto_trains_on_the_cpu(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--device", "cuda"])
    assert "--device cuda: this torch" in capsys.readouterr().err
    assert parse_args([]).device == "cpu"


def test_train_on_val_trains_on_both_splits_and_saves_the_last_epoch(small_fer: Path, tmp_path: Path,
                                                                    capsys) -> None:
    _train(small_fer, tmp_path, "--train-on-val", "--score-test")
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["scheduler"]["last_epoch"] == 2 * (256 + 64) // 64  # steps over train + val faces
    _, spec = load_model(tmp_path / "best.pt")
    assert spec.training["epoch"] == 2 and spec.training["train_split"] == "train+val"
    assert spec.training["selected_by"] == "last epoch (val is trained on)"
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["training_splits"] == ["train", "val"] and report["best_epoch"] == 2
    assert report["test"]["count"] == report["test_tta"]["count"] == 64
    out = capsys.readouterr().out
    assert "val: accuracy" in out and out.count("(trained on)") == 2 + 2  # two epochs' lines, val and val_tta
    test_line = next(line for line in out.splitlines() if line.startswith("test: accuracy"))
    assert "(trained on)" not in test_line


def test_resume_refuses_changed_arguments(small_fer: Path, tmp_path: Path) -> None:
    _train(small_fer, tmp_path, "--stop-after", "1")
    with pytest.raises(SystemExit, match="lr"):
        _train(small_fer, tmp_path, "--resume", "--lr", "0.5")


def test_resume_takes_a_checkpoint_from_before_label_sets_as_fer2013_labels(small_fer: Path, tmp_path: Path) -> None:
    _train(small_fer, tmp_path, "--stop-after", "1")
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert (state["config"].pop("labels"), state["config"].pop("ferplus")) == ("fer2013", None)
    torch.save(state, tmp_path / "last.pt")
    _train(small_fer, tmp_path, "--resume")
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 2


def test_fine_tuning_records_its_lineage(small_fer: Path, tmp_path: Path) -> None:
    _train(small_fer, tmp_path / "base", "--stop-after", "1")
    base = tmp_path / "base" / "best.pt"
    assert main(["--data", str(small_fer), "--out", str(tmp_path / "tuned"), "--epochs", "1", "--batch-size", "64",
                 "--init", str(base), "--lr", "0.01"]) == 0
    _, spec = load_model(tmp_path / "tuned" / "best.pt")
    assert spec.training["config"]["init"] == str(base)
    assert spec.training["initialised_from"] == load_model(base)[1].training
    with pytest.raises(SystemExit, match="not fer_resnet"):
        main(["--data", str(small_fer), "--out", str(tmp_path / "wide"), "--epochs", "1", "--init", str(base),
              "--widths", "8", "16", "32", "64"])


def test_a_deeper_network_starts_as_the_model_it_is_initialised_from(small_fer: Path, tmp_path: Path) -> None:
    _train(small_fer, tmp_path / "base", "--stop-after", "1")
    base = tmp_path / "base" / "best.pt"
    source, spec = load_model(base)
    deeper_kwargs = {**spec.kwargs, "blocks": [1, 2, 2, 1]}
    deeper = build_network("fer_resnet", **deeper_kwargs)
    assert train._load_initial_weights(deeper, deeper_kwargs, base) == spec.training
    faces = torch.from_numpy(load_npz(small_fer, "val").images[:16]).float().div(255).sub(spec.mean).div(spec.std)
    with torch.no_grad():
        torch.testing.assert_close(deeper.eval()(faces[:, None]), source(faces[:, None]), rtol=1e-5, atol=1e-5)
    assert len(deeper.layer2) == len(deeper.layer3) == 2

    assert main(["--data", str(small_fer), "--out", str(tmp_path / "deeper"), "--epochs", "1", "--batch-size", "64",
                 "--blocks", "1", "2", "2", "1", "--init", str(base), "--lr", "0.01"]) == 0
    tuned, tuned_spec = load_model(tmp_path / "deeper" / "best.pt")
    assert tuned_spec.kwargs["blocks"] == [1, 2, 2, 1] and tuned_spec.training["initialised_from"] == spec.training
    with pytest.raises(SystemExit, match="fewer blocks"):
        main(["--data", str(small_fer), "--out", str(tmp_path / "shallower"), "--epochs", "1",
              "--init", str(tmp_path / "deeper" / "best.pt")])


def test_distillation_loss_is_the_scaled_kl_of_softened_predictions() -> None:
    generator = torch.Generator().manual_seed(0)
    teacher, student = torch.randn(6, 7, generator=generator), torch.randn(6, 7, generator=generator)
    soft_teacher, soft_student = torch.softmax(teacher / 3.0, 1), torch.softmax(student / 3.0, 1)
    expected = 9.0 * (soft_teacher * (soft_teacher.log() - soft_student.log())).sum(1).mean()
    assert torch.isclose(distillation_loss(student, teacher, 3.0), expected, rtol=1e-5)
    assert float(distillation_loss(teacher + 4.0, teacher, 3.0)) == pytest.approx(0.0, abs=1e-6)


def test_distillation_records_its_teacher_and_refuses_a_mismatched_one(small_fer: Path, small_teacher: Path,
                                                                      tmp_path: Path) -> None:
    _train(small_fer, tmp_path / "student", "--teacher", str(small_teacher), "--distill-weight", "0.7")
    _, spec = load_model(tmp_path / "student" / "best.pt")
    assert spec.training["config"]["teacher"] == [str(small_teacher)]
    assert spec.training["distilled_from"] == [load_model(small_teacher)[1].training]
    undistilled = tmp_path / "undistilled"
    _train(small_fer, undistilled)
    distilled_history = json.loads((tmp_path / "student" / "report.json").read_text())["history"]
    assert distilled_history != json.loads((undistilled / "report.json").read_text())["history"]

    inverted = tmp_path / "inverted.npz"
    with np.load(small_fer) as data:
        np.savez(inverted, **{**{name: data[name] for name in data.files}, "images": 255 - data["images"]})
    with pytest.raises(SystemExit, match="normalisation"):
        _train(inverted, tmp_path / "mismatched", "--teacher", str(small_teacher))
    with pytest.raises(SystemExit):
        _train(small_fer, tmp_path / "overweight", "--teacher", str(small_teacher), "--distill-weight", "1.5")


def test_flip_teacher_is_recorded_and_changes_the_targets(small_fer: Path, small_teacher: Path,
                                                         tmp_path: Path) -> None:
    teacher = str(small_teacher)
    _train(small_fer, tmp_path / "plain", "--teacher", teacher, "--distill-weight", "1")
    _train(small_fer, tmp_path / "flip", "--teacher", teacher, "--distill-weight", "1", "--teacher-flip")
    assert load_model(tmp_path / "flip" / "best.pt")[1].training["config"]["teacher_flip"] is True
    losses = [[epoch["train_loss"] for epoch in json.loads((tmp_path / name / "report.json").read_text())["history"]]
              for name in ("plain", "flip")]
    assert losses[0] != losses[1]
    with pytest.raises(SystemExit):
        _train(small_fer, tmp_path / "no_teacher", "--teacher-flip")


def test_several_teachers_teach_the_mean_of_their_logits(small_fer: Path, small_teacher: Path,
                                                         tmp_path_factory: pytest.TempPathFactory,
                                                         tmp_path: Path) -> None:
    other_out = tmp_path_factory.mktemp("other_teacher")
    _train(small_fer, other_out, "--stop-after", "1", "--widths", "8", "16", "32", "64", "--seed", "6")
    paths = [str(small_teacher), str(other_out / "best.pt")]
    networks = [load_model(path)[0] for path in paths]
    faces = torch.randn(4, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = [network(faces) for network in networks]
        assert torch.allclose(TeacherEnsemble(networks)(faces), (logits[0] + logits[1]) / 2, atol=1e-6)
        assert torch.equal(TeacherEnsemble(networks[:1] * 2)(faces), logits[0])

    _train(small_fer, tmp_path / "two", "--teacher", *paths, "--teacher-flip")
    _, spec = load_model(tmp_path / "two" / "best.pt")
    assert spec.training["config"]["teacher"] == paths
    assert spec.training["distilled_from"] == [load_model(path)[1].training for path in paths]
