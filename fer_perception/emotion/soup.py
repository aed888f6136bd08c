"""Averaging the weights of trained emotion models, a "model soup" (CLI ``fer-soup``).

Models fine-tuned from one starting model stay in one basin of the loss, where
the mean of their weights is a model in its own right, often better than each
of them (Wortsman et al., 2022) and as cheap to run as one. ``fer-soup``
averages such model files (same architecture and arguments, labels, input and
normalisation are required), recomputes the BatchNorm statistics on the
un-augmented training faces (averaged weights have statistics of their own)
or, with ``--batch-norm average``, averages the models' own statistics, and
saves the result in the shipped format, with each ingredient's training
record as its lineage. ``--greedy`` is the greedy soup: the models are tried in
order of val accuracy and each is kept only if the soup's val accuracy does not
fall. Only ``train`` and ``val`` are read; the test split is left for the report.
Models refit on train + val (``fer-train --train-on-val``) make a soup trained
on val too: it is recorded as such, its val figures are marked "trained on",
and ``--greedy``, which would choose by val, refuses them. ``--weights`` makes a weighted average instead, e.g.
a fine-tune interpolated with the model it started from, which keeps what the start knew while gaining what the
fine-tune learned (WiSE-FT, Wortsman et al., 2022).
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fer_perception.emotion.checkpoint import ModelLoadError, ModelSpec, load_model, save_model
from fer_perception.emotion.dataset import DatasetError, FaceSet, load_npz
from fer_perception.emotion.evaluate import network_accuracy
from fer_perception.emotion.labels import canonical_label
from fer_perception.emotion.train import recompute_batch_norm
from fer_perception.paths import data_dir


def _same_model_kind(first: ModelSpec, other: ModelSpec) -> bool:
    return (other.architecture == first.architecture and other.kwargs == first.kwargs
            and other.labels == first.labels and other.input_size == first.input_size
            and other.color == first.color and math.isclose(other.mean, first.mean, rel_tol=1e-6)
            and math.isclose(other.std, first.std, rel_tol=1e-6))


def load_ingredients(paths: list[Path]) -> list[tuple[nn.Module, ModelSpec]]:
    """The networks of ``paths`` with their specs; :class:`ModelLoadError` unless all are of one kind."""
    models = [load_model(path) for path in paths]
    first = models[0][1]
    for path, (_, spec) in zip(paths, models):
        if not _same_model_kind(first, spec):
            raise ModelLoadError(f"{path} ({spec.architecture} {spec.kwargs}, labels {list(spec.labels)}) cannot be "
                                 f"averaged with {paths[0]} ({first.architecture} {first.kwargs}, "
                                 f"labels {list(first.labels)}): architecture, labels, input and normalisation "
                                 "must match")
    return models


def average_weights(networks: list[nn.Module], train_images: np.ndarray | None, mean: float,
                    std: float, weights: list[float] | None = None) -> nn.Module:
    """A copy of ``networks[0]`` holding the mean of all their parameters (weighted by ``weights`` when given,
    which need not sum to 1), with BatchNorm statistics recomputed on ``train_images`` (uint8 model-input faces)
    or, where that is None, the networks' statistics averaged alike."""
    states = [network.state_dict() for network in networks]
    shares = torch.tensor(weights or [1.0] * len(networks), dtype=torch.float64)
    shares = (shares / shares.sum()).float()
    soup = copy.deepcopy(networks[0])
    soup.load_state_dict({name: torch.tensordot(shares, torch.stack([state[name].float() for state in states]),
                                                dims=1).to(tensor.dtype)
                          if tensor.is_floating_point() else tensor
                          for name, tensor in states[0].items()})
    if train_images is not None:
        recompute_batch_norm(soup, torch.from_numpy(train_images), mean, std)
    return soup


def _trained_on_val(spec: ModelSpec) -> bool:
    return "val" in spec.training.get("train_split", "train").split("+")


def make_soup(paths: list[Path], train: FaceSet, val: FaceSet, greedy: bool, recompute_statistics: bool = True,
              report: Callable[[str], None] = print,
              weights: list[float] | None = None) -> tuple[nn.Module, ModelSpec]:
    """The soup of the model files ``paths`` (all of them, or the greedy choice) and its spec, whose training
    record lists each model's val accuracy, the models kept, the soup's val accuracy and the kept models' own
    training records. ``train`` and ``val`` hold model-input faces with labels in the models' label order; the
    soup's BatchNorm statistics are recomputed on ``train``'s faces, or averaged if not ``recompute_statistics``
    (models trained with an average of their weights and statistics, ``fer-train --ema-decay``, carry
    statistics of augmented faces, which may suit them better). ``weights``: a weighted average of all the models
    (one weight each; not with ``greedy``), e.g. a fine-tune interpolated with the model it started from."""
    models = load_ingredients(paths)
    spec = models[0][1]
    trained_on_val = [path for path, (_, ingredient) in zip(paths, models) if _trained_on_val(ingredient)]
    if greedy and trained_on_val:
        raise ModelLoadError(f"a greedy soup chooses by val accuracy, but {trained_on_val[0]} was trained on val "
                             "(fer-train --train-on-val): make a uniform soup of such models")
    held_out = " (trained on)" if trained_on_val else ""
    scores = [network_accuracy(network, spec.mean, spec.std, val) for network, _ in models]
    for path, score in zip(paths, scores):
        report(f"{path}: val accuracy {score:.4f}{held_out}")

    def soup_of(indices: list[int]) -> nn.Module:
        if len(indices) == 1:
            return models[indices[0]][0]
        return average_weights([models[index][0] for index in indices],
                               train.images if recompute_statistics else None, spec.mean, spec.std,
                               None if weights is None else [weights[index] for index in indices])

    kept = list(range(len(paths)))
    if greedy:
        order = sorted(kept, key=lambda index: -scores[index])
        kept, best = order[:1], scores[order[0]]
        for index in order[1:]:
            score = network_accuracy(soup_of(kept + [index]), spec.mean, spec.std, val)
            report(f"  + {paths[index]}: soup val accuracy {score:.4f} ({'kept' if score >= best else 'left out'})")
            if score >= best:
                kept, best = kept + [index], score
    soup = soup_of(kept)
    training = {"dataset": "FER2013", "train_split": "train+val" if trained_on_val else "train",
                "method": "weight average (model soup)",
                "selected_by": "greedy soup on val accuracy" if greedy else
                "none (weighted soup)" if weights is not None else "none (uniform soup)",
                "batch_norm_statistics": "recomputed on un-augmented train faces" if recompute_statistics
                else "mean of the models'",
                "models": [str(path) for path in paths], "models_val_accuracy": scores,
                **({"weights": list(weights)} if weights is not None else {}),
                "kept": [str(paths[index]) for index in kept],
                "val_accuracy": network_accuracy(soup, spec.mean, spec.std, val),
                "souped_from": [models[index][1].training for index in kept]}
    return soup, replace(spec, training=training)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fer-soup", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+", help="model files fine-tuned from one starting model")
    parser.add_argument("--out", type=Path, required=True, help="where to write the soup's model file")
    parser.add_argument("--data", type=Path, default=data_dir() / "fer2013" / "fer2013.npz",
                        help="FER2013-layout .npz whose train and val splits are used (default: %(default)s)")
    parser.add_argument("--greedy", action="store_true",
                        help="keep a model only if it does not lower the soup's val accuracy (tried best first)")
    parser.add_argument("--batch-norm", choices=("recompute", "average"), default="recompute",
                        help="the soup's BatchNorm statistics: recomputed on the un-augmented train faces, or the "
                             "mean of the models' own (default: %(default)s)")
    parser.add_argument("--weights", type=float, nargs="+", default=None, metavar="W",
                        help="a weighted average instead of the mean: one non-negative weight per model "
                             "(START.pt FINETUNE.pt --weights 0.8 0.2 interpolates a fine-tune with its start)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.weights is not None:
        if args.greedy:
            parser.error("--weights and --greedy: a weighted soup keeps every model")
        if len(args.weights) != len(args.models) or min(args.weights) < 0 or sum(args.weights) <= 0:
            parser.error("--weights: one non-negative weight per model, not all zero")
    torch.set_num_threads(args.threads)
    try:
        train, val = load_npz(args.data, "train"), load_npz(args.data, "val")
        labels = load_model(args.models[0])[1].labels
        if tuple(canonical_label(name) for name in val.classes) != tuple(labels):
            raise DatasetError(f"{args.data}: classes {list(val.classes)} are not the models' {list(labels)}")
        soup, spec = make_soup(args.models, train, val, args.greedy, args.batch_norm == "recompute",
                               weights=args.weights)
    except (DatasetError, ModelLoadError) as error:
        print(f"fer-soup: {error}", file=sys.stderr)
        return 2
    save_model(args.out, soup, replace(spec, training={**spec.training, "data_file": args.data.name}))
    held_out = " (trained on)" if spec.training["train_split"] != "train" else ""
    print(f"soup of {len(spec.training['kept'])} of {len(args.models)} models: val accuracy "
          f"{spec.training['val_accuracy']:.4f}{held_out}; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
