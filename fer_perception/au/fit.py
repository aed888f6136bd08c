"""fer-au-fit: fit the geometric AU estimator's prior baseline and scales on labelled faces.

Without AU ground truth, expressions stand in for it: the prior baseline is
the median feature vector of the neutral faces; an AU's ``onset`` is a high
percentile of its combined feature change on neutral faces (most neutral
faces read 0) and its ``full`` a high percentile on the faces of the
expressions FACS ties it to (``fit_classes``). Only the training split is
used, so the test split stays free for validation (``make bench``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

from fer_perception.au.dataset_mesh import face_meshes
from fer_perception.au.features import FEATURE_NAMES, compute_features
from fer_perception.paths import config_path, data_dir

NEUTRAL_ONSET_PERCENTILE = 75.0
CLASS_FULL_PERCENTILE = 95.0
# For an AU no FER2013 expression is tied to: full = onset + this many neutral inter-quartile ranges.
SPREAD_FULL_IQRS = 6.0


def dataset_features(images: np.ndarray, quiet: bool) -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors (N x F, NaN rows where no mesh was found) and the found mask."""
    meshes, found = face_meshes(images, quiet=quiet)
    features = np.full((len(images), len(FEATURE_NAMES)), np.nan)
    for index in np.flatnonzero(found):
        features[index] = compute_features(meshes[index])[0]
    return features, found


def fit_scales(features: np.ndarray, labels: np.ndarray, classes: list[str],
               aus: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """The neutral prior, its spread (inter-quartile range per feature) and each AU's onset/full, from
    features of labelled faces (found faces only)."""
    neutral = features[labels == classes.index("neutral")]
    prior = np.median(neutral, axis=0)
    neutral_iqr = np.subtract(*np.percentile(neutral, [75, 25], axis=0))
    fitted = {}
    for name, spec in aus.items():
        weights = np.array([float(spec["weights"].get(f, 0.0)) for f in FEATURE_NAMES])
        neutral_change = (neutral - prior) @ weights
        onset = float(np.percentile(neutral_change, NEUTRAL_ONSET_PERCENTILE))
        tied = np.isin(labels, [classes.index(c) for c in spec.get("fit_classes", [])])
        if tied.any():
            full = float(np.percentile((features[tied] - prior) @ weights, CLASS_FULL_PERCENTILE))
        else:
            q25, q75 = np.percentile(neutral_change, [25, 75])
            full = onset + SPREAD_FULL_IQRS * float(q75 - q25)
        spread = float(np.percentile(neutral_change, 90) - np.percentile(neutral_change, 10))
        fitted[name] = (onset, max(full, onset + spread))
    return prior, neutral_iqr, fitted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=data_dir() / "fer2013" / "fer2013.npz")
    parser.add_argument("--split", default="train")
    parser.add_argument("--limit", type=int, default=8000, help="faces sampled from the split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path, default=config_path("action_units.yaml"))
    parser.add_argument("--quiet", action="store_true")
    options = parser.parse_args(argv)
    if not options.data.is_file():
        parser.error(f"data not found: {options.data}")
    data = np.load(options.data)
    classes = [str(c) for c in data["classes"]]
    split_names = [str(s) for s in data["split_names"]]
    chosen = np.flatnonzero(data["split"] == split_names.index(options.split))
    chosen = np.sort(np.random.default_rng(options.seed).choice(chosen, min(options.limit, len(chosen)),
                                                                replace=False))
    features, found = dataset_features(data["images"][chosen], options.quiet)
    labels = data["labels"][chosen].astype(int)
    config = yaml.safe_load(options.config.read_text())
    geometry = config["geometry"]
    prior, spread, fitted = fit_scales(features[found], labels[found], classes, geometry["aus"])
    geometry["prior"] = {name: round(float(v), 5) for name, v in zip(FEATURE_NAMES, prior)}
    geometry["spread"] = {name: round(float(v), 5) for name, v in zip(FEATURE_NAMES, spread)}
    for name, (onset, full) in fitted.items():
        geometry["aus"][name]["onset"] = round(onset, 5)
        geometry["aus"][name]["full"] = round(full, 5)
    geometry["fitted"] = {"data": options.data.name, "split": options.split, "faces": int(len(chosen)),
                          "meshes_found": int(found.sum()), "seed": options.seed,
                          "command": "fer-au-fit " + " ".join(argv if argv is not None else sys.argv[1:])}
    header = "".join(line + "\n" for line in options.config.read_text().splitlines() if line.startswith("#"))
    options.config.write_text(header + yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=110))
    print(f"fitted on {found.sum()} of {len(chosen)} {options.split} faces; wrote {options.config}")


if __name__ == "__main__":
    main()
