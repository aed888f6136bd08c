"""Action units: cost per face on top of the mesh, and AU -> expression ROC AUCs on FER2013's test split."""
from __future__ import annotations

import time

import numpy as np

from bench.figures import Figure, median_p95
from bench.frames import one_face_640x480, tracked_faces
from fer_perception.au.estimators import create_au_estimator
from fer_perception.au.dataset_mesh import face_meshes
from fer_perception.au.validate import GOALS, class_feature_medians, expression_aucs
from fer_perception.paths import config_path, data_dir


def au_cost(quick: bool) -> list[Figure]:
    faces = [face for frame, _ in tracked_faces(one_face_640x480()) for face in frame.faces]
    estimator = create_au_estimator(config_path("action_units.yaml"))
    samples = []
    for _ in range(2 if quick else 10):
        for face in faces:
            start = time.perf_counter()
            estimator.estimate(face.track_id, face.landmarks, face.head_pose)
            samples.append(time.perf_counter() - start)
    median, p95 = median_p95(samples)
    return [Figure("stages", "AUs + eyes per face (geometry) median", median, "ms", "< 1", median < 1.0, 3),
            Figure("stages", "AUs + eyes per face (geometry) p95", p95, "ms", issue=3)]


def au_accuracy(quick: bool) -> list[Figure]:
    path = data_dir() / "fer2013" / "fer2013.npz"
    if not path.is_file():
        raise SystemExit(f"benchmark data missing: {path}")
    data = np.load(path)
    test = np.flatnonzero(data["split"] == list(data["split_names"]).index("test"))
    if quick:
        test = test[:600]
    estimator = create_au_estimator(config_path("action_units.yaml"), "geometry")
    meshes, found = face_meshes(data["images"][test], quiet=True)
    labels, classes = data["labels"][test].astype(int), [str(c) for c in data["classes"]]
    aucs = expression_aucs(estimator, meshes, found, labels, classes)
    note = f"FER2013 test split, {len(test)} faces" + (" (quick subset)" if quick else "")
    figures = [Figure("accuracy", "face mesh found on FER2013 test faces", found.mean() * 100, "%", issue=3,
                      note=note)]
    for feature in ("lip_gap", "jaw_length"):  # what limits AU25/AU26 -> surprise on these faces
        medians = class_feature_medians(meshes, found, labels, classes, feature)
        figures += [Figure("accuracy", f"median mesh {feature}, {name} faces", medians[name], "IOD", issue=3, note=note)
                    for name in ("surprise", "happy", "neutral")]
    for (au, expression), auc in aucs.items():
        goal = GOALS.get((au, expression))
        figures.append(Figure("accuracy", f"ROC AUC AU{au} -> {expression}", auc, "",
                              f">= {goal}" if goal else "", (auc >= goal) if goal else None, 3, note))
    return figures


def run(quick: bool) -> list[Figure]:
    return au_cost(quick) + au_accuracy(quick)
