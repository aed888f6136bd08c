"""Choosing the temperature of the learned classifier and its fusion weights with the FACS mapping on val (CLI
``fer-fit-fusion``).

The expression stage recalibrates the learned probabilities by the model's
temperature (:func:`fer_perception.emotion.fusion.temperature_scaled`),
chosen here first (:func:`fit_temperature`), then fuses them with the FACS
mapping's (:func:`fer_perception.emotion.fusion.fuse`, weights ``fusion`` in
``emotion.yaml``). This tool scores every FACS weight of a grid on a split of
FER2013 with its FER+ votes (default val; never test): the faces' meshes come
from MediaPipe on the upscaled faces, their AUs from the configured estimator
as for a new track (population prior), the learned probabilities from the
model on the faces themselves, at the chosen temperature. Per weight it
prints FER+ majority accuracy and macro-F1, FER2013 accuracy, and the mean
negative log-likelihood of the FER+ vote distributions (how well the fused
probabilities, which smoothing and events read, match what the taggers saw),
and it picks the weight with the best FER+ macro-F1 (the smaller weight on a
tie). It also measures whether the face's geometry helps the learned
classifier beyond the fixed FACS mapping (:func:`landmark_assisted`: the AUs
as extra inputs of a classifier learned on top of the network,
cross-validated on the split). The choices and the tables are documented in
``docs/emotion.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from fer_perception.au.check import still_action_units
from fer_perception.au.dataset_mesh import face_meshes
from fer_perception.emotion.checkpoint import ModelLoadError, load_model
from fer_perception.emotion.dataset import DatasetError, default_ferplus_path, load_ferplus, load_npz
from fer_perception.emotion.evaluate import (classification_metrics, expected_calibration_error, network_probabilities,
                                             predict_probabilities, to_model_input)
from fer_perception.emotion.facs import FacsMapping
from fer_perception.emotion.fusion import fuse, temperature_scaled
from fer_perception.emotion.loading import UnknownEmotionModelError, emotion_config, model_path
from fer_perception.expression_pipeline import pipeline_from_config
from fer_perception.paths import data_dir
from fer_perception.types import AU_NUMBERS, ActionUnits

FACS_WEIGHTS = tuple(round(0.05 * step, 2) for step in range(11))
"""The FACS weights tried (the learned weight is 1 minus it)."""

TEMPERATURES = tuple(round(0.5 + 0.05 * step, 2) for step in range(31))
"""The temperatures tried, 0.5 to 2."""


def fit_temperature(learned: np.ndarray, majority: np.ndarray) -> dict[str, float]:
    """Temperature scaling (Guo et al., 2017) of the learned probabilities ``learned`` (N, C) to the labels
    ``majority`` (N,): the temperature of :data:`TEMPERATURES` with the lowest negative log-likelihood, the ECE
    at 1 and at it, and the one ``chosen``: it where it lowers the ECE, else 1 (a model already calibrated keeps
    its probabilities as they are)."""
    rows = np.arange(len(majority))

    def nll(temperature: float) -> float:
        return float(-np.log(np.clip(temperature_scaled(learned, temperature)[rows, majority], 1e-12, 1.0)).mean())
    fitted = min(TEMPERATURES, key=nll)
    ece_at_1 = expected_calibration_error(learned, majority)
    ece_fitted = expected_calibration_error(temperature_scaled(learned, fitted), majority)
    return {"fitted": fitted, "nll_at_1": nll(1.0), "nll_fitted": nll(fitted), "ece_at_1": ece_at_1,
            "ece_fitted": ece_fitted, "chosen": fitted if ece_fitted < ece_at_1 else 1.0}


def facs_probabilities(units: list[ActionUnits | None]) -> list[np.ndarray | None]:
    """The FACS mapping's probabilities of each face's AUs; None where there are none or too few were estimated."""
    facs = FacsMapping.from_dict(emotion_config()["facs"])
    return [None if face is None else facs.probabilities(face) for face in units]


def landmark_assisted(learned: np.ndarray, units: list[ActionUnits | None], distributions: np.ndarray,
                      majority: np.ndarray, keep: np.ndarray, labels: tuple[str, ...]) -> dict[str, dict]:
    """Whether the face's geometry adds to the learned classifier, by two-fold cross-validation on the split: a
    multinomial logistic regression on the learned log-probabilities alone (a recalibration, the fair baseline)
    against one that also reads the AU intensities (0 where not estimated, with the estimated flags), each fit
    to the FER+ vote distributions of one half and scored on the other."""
    intensities = np.array([np.zeros(len(AU_NUMBERS)) if u is None else np.where(u.estimated, u.intensity, 0.0) / 5
                            for u in units])
    flags = np.array([np.zeros(len(AU_NUMBERS)) if u is None else u.estimated.astype(float) for u in units])
    log_learned = np.log(np.clip(learned, 1e-6, 1.0))
    inputs = {"learned only (recalibrated)": log_learned,
              "learned + AU intensities": np.hstack([log_learned, intensities, flags])}
    rows = np.flatnonzero(keep)
    halves = (rows[rows % 2 == 0], rows[rows % 2 == 1])
    result = {}
    for name, features in inputs.items():
        predicted = np.zeros(len(rows), np.int64)
        for fit, score in (halves, halves[::-1]):
            model = _fit_softmax_regression(features[fit], distributions[fit])
            predicted[np.searchsorted(rows, score)] = model(features[score]).argmax(1)
        metrics = classification_metrics(majority[rows], predicted, labels)
        result[name] = {"ferplus_accuracy": metrics["accuracy"], "ferplus_macro_f1": metrics["macro_f1"]}
    return result


def _fit_softmax_regression(features: np.ndarray, targets: np.ndarray, l2: float = 1e-3):
    """A linear softmax classifier fit to soft targets (cross-entropy, L2 on the weights, L-BFGS)."""
    x = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(targets, dtype=torch.float64)
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    layer = torch.nn.Linear(x.shape[1], y.shape[1]).double()
    optimiser = torch.optim.LBFGS(layer.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = -(y * torch.log_softmax(layer((x - mean) / std), 1)).sum(1).mean() + l2 * layer.weight.square().sum()
        value.backward()
        return value
    optimiser.step(loss)

    def predict(new: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(layer((torch.as_tensor(new, dtype=torch.float64) - mean) / std), 1).numpy()
    return predict


def weight_table(learned: np.ndarray, facs: list[np.ndarray | None], fer_labels: np.ndarray,
                 majority: np.ndarray, distributions: np.ndarray, keep: np.ndarray,
                 labels: tuple[str, ...]) -> list[dict]:
    """Per FACS weight of :data:`FACS_WEIGHTS`, the fused predictions' figures: FER+ majority accuracy and
    macro-F1 and vote-distribution NLL over the faces FER+ gives a target (``keep``), FER2013 accuracy over all."""
    rows = []
    for weight in FACS_WEIGHTS:
        fused = np.array([fuse([(p, 1.0 - weight), (f, weight)]) for p, f in zip(learned, facs)])
        ferplus = classification_metrics(majority[keep], fused[keep].argmax(1), labels)
        nll = float(-(distributions[keep] * np.log(np.clip(fused[keep], 1e-7, 1.0))).sum(1).mean())
        rows.append({"facs_weight": weight, "ferplus_accuracy": ferplus["accuracy"],
                     "ferplus_macro_f1": ferplus["macro_f1"], "ferplus_nll": nll,
                     "fer2013_accuracy": float((fused.argmax(1) == fer_labels).mean())})
    return rows


def best_weight(rows: list[dict]) -> float:
    """The FACS weight with the best FER+ macro-F1; the smallest of equals."""
    return max(rows, key=lambda row: (round(row["ferplus_macro_f1"], 4), -row["facs_weight"]))["facs_weight"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fer-fit-fusion", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=data_dir() / "fer2013" / "fer2013.npz",
                        help="FER2013 .npz (default: %(default)s)")
    parser.add_argument("--ferplus", type=Path, default=None, metavar="VOTES",
                        help=f"FER+ votes row-aligned to --data (default: {default_ferplus_path()})")
    parser.add_argument("--split", default="val", choices=("train", "val"),
                        help="split to choose on (default: %(default)s; test is never used to choose)")
    parser.add_argument("--model", default=None, metavar="NAME_OR_FILE",
                        help="emotion model by name in emotion.yaml, or a .pt file (default: the configured one)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N faces of the split")
    parser.add_argument("--json", type=Path, default=None, help="also write the table and the choice here")
    args = parser.parse_args(argv)
    try:
        faces = load_npz(args.data, args.split)
        targets = load_ferplus(args.ferplus or default_ferplus_path(), args.data, args.split)
        path = model_path(emotion_config(), args.model)
        network, spec = load_model(path)
    except (DatasetError, ModelLoadError, UnknownEmotionModelError) as error:
        print(f"fer-fit-fusion: {error}", file=sys.stderr)
        return 2
    count = len(faces.labels) if args.limit is None else min(args.limit, len(faces.labels))
    images = faces.images[:count]
    learned = predict_probabilities(network_probabilities(network, spec.mean, spec.std),
                                    to_model_input(images, spec.input_size))
    majority, distributions, keep = targets.majority[:count], targets.distributions[:count], targets.keep[:count]
    temperature = fit_temperature(learned[keep], majority[keep])
    learned = temperature_scaled(learned, temperature["chosen"])
    meshes, found = face_meshes(images, quiet=True)
    read = iter(still_action_units(pipeline_from_config(None).au_estimator, meshes[found]))
    units = [next(read) if has_mesh else None for has_mesh in found]
    facs = facs_probabilities(units)
    rows = weight_table(learned, facs, faces.labels[:count], majority, distributions, keep, tuple(spec.labels))
    assisted = landmark_assisted(learned, units, distributions, majority, keep, tuple(spec.labels))
    chosen = best_weight(rows)
    with_facs = sum(f is not None for f in facs)
    print(f"{args.data} split {args.split}: {count} faces, {int(found.sum())} with a mesh, {with_facs} with a FACS "
          f"reading; model {path.name}")
    print(f"temperature (lowest NLL of the FER+ majority labels): {temperature['fitted']:.2f}, NLL "
          f"{temperature['nll_at_1']:.4f} -> {temperature['nll_fitted']:.4f}, ECE {temperature['ece_at_1']:.4f} -> "
          f"{temperature['ece_fitted']:.4f}; chosen {temperature['chosen']:.2f}"
          + ("" if temperature["chosen"] != 1.0 else " (the ECE does not drop)"))
    print(f"{'FACS weight':>11} {'FER+ acc':>9} {'FER+ F1':>8} {'FER+ NLL':>9} {'FER2013 acc':>12}")
    for row in rows:
        print(f"{row['facs_weight']:>11.2f} {row['ferplus_accuracy']:>9.4f} {row['ferplus_macro_f1']:>8.4f} "
              f"{row['ferplus_nll']:>9.4f} {row['fer2013_accuracy']:>12.4f}")
    print(f"best FER+ macro-F1 at FACS weight {chosen:.2f} (fusion: learned {1 - chosen:.2f}, facs {chosen:.2f})")
    print("landmark-assisted, two-fold cross-validation on the split (logistic regression to the FER+ votes):")
    for name, figures in assisted.items():
        print(f"  {name:<28} FER+ acc {figures['ferplus_accuracy']:.4f}  FER+ macro-F1 {figures['ferplus_macro_f1']:.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"split": args.split, "model": str(path), "faces": count,
                                         "with_facs": with_facs, "temperature": temperature, "rows": rows,
                                         "chosen_facs_weight": chosen,
                                         "landmark_assisted": assisted},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
