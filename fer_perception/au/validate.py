"""How well each AU separates the expressions FACS ties it to, on labelled faces (ROC AUC).

We have no AU ground truth; FER2013's expression labels stand in for it: AU12
should be high on happy faces and low on the others, AU26 on surprised ones,
and so on. Each face is scored as a first frame of its own track (prior
baseline), as a still image must be.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from fer_perception.au.features import FEATURE_INDEX, compute_features
from fer_perception.au.geometry import GeometricAUEstimator
from fer_perception.types import AU_NUMBERS
from fer_perception.face.head_pose import estimate_head_pose

# (AU, expression) pairs FACS ties together (EMFACS prototypes), as the AU issue lists them.
AU_EXPRESSION_PAIRS = ((12, "happy"), (6, "happy"), (1, "surprise"), (2, "surprise"), (5, "surprise"),
                       (26, "surprise"), (25, "surprise"), (4, "angry"), (4, "sad"), (4, "fear"),
                       (9, "disgust"), (10, "disgust"), (15, "sad"), (20, "fear"))
GOALS = {(12, "happy"): 0.90, (26, "surprise"): 0.85, (25, "surprise"): 0.85, (4, "angry"): 0.75}


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), by the rank-sum formula."""
    ranks = rankdata(scores)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def still_image_intensities(estimator: GeometricAUEstimator, meshes: np.ndarray, found: np.ndarray) -> np.ndarray:
    """AU intensities (N x 15, NaN where no mesh) with each face scored against the prior baseline."""
    intensities = np.full((len(meshes), len(AU_NUMBERS)), np.nan)
    for index in np.flatnonzero(found):
        track = f"still{index}"
        pose = estimate_head_pose(meshes[index])
        intensities[index] = estimator.estimate(track, meshes[index], pose).intensity
        estimator.drop(track)
    return intensities


def expression_aucs(estimator: GeometricAUEstimator, meshes: np.ndarray, found: np.ndarray, labels: np.ndarray,
                    classes: list[str]) -> dict[tuple[int, str], float]:
    """ROC AUC of each AU for its FACS-tied expression, over the faces a mesh was found on."""
    intensities = still_image_intensities(estimator, meshes, found)
    aucs = {}
    for au, expression in AU_EXPRESSION_PAIRS:
        positive = labels[found] == classes.index(expression)
        aucs[(au, expression)] = roc_auc(intensities[found, AU_NUMBERS.index(au)], positive)
    return aucs


def class_feature_medians(meshes: np.ndarray, found: np.ndarray, labels: np.ndarray, classes: list[str],
                          feature: str) -> dict[str, float]:
    """Median of one geometric feature (IOD units) per expression class: what the mesh sees of each expression."""
    values = np.array([compute_features(mesh)[0][FEATURE_INDEX[feature]] for mesh in meshes[found]])
    return {name: float(np.median(values[labels[found] == index])) for index, name in enumerate(classes)
            if np.any(labels[found] == index)}
