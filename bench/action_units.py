"""Action units: cost per face on top of the mesh, and the AU check (``fer-au-check``) against FER+ labels,
OpenFace 2.0.6 on the shared clips and held expressions; its table is also written to
``bench/results/au_check.txt``."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from bench.figures import Figure, median_p95
from bench.frames import one_face_640x480, tracked_faces
from fer_perception.au.check import PROXY_GOALS, proxy_check, run_check
from fer_perception.au.estimators import create_au_estimator
from fer_perception.paths import config_path

RESULTS = Path(__file__).resolve().parent / "results"
ISSUE = 27


def au_cost(quick: bool) -> list[Figure]:
    faces = [face for frame, _ in tracked_faces(one_face_640x480()) for face in frame.faces]
    estimator = create_au_estimator(config_path("action_units.yaml"))
    samples = []
    for _ in range(2 if quick else 10):
        for index, face in enumerate(faces):
            start = time.perf_counter()
            estimator.estimate(face.track_id, face.landmarks, face.head_pose, stamp_s=index / 30,
                               neutral_probability=0.9)
            samples.append(time.perf_counter() - start)
    median, p95 = median_p95(samples)
    return [Figure("stages", "AUs + eyes per face (geometry) median", median, "ms", "<= 1", median <= 1.0, 3),
            Figure("stages", "AUs + eyes per face (geometry) p95", p95, "ms", issue=3)]


def au_check(quick: bool) -> list[Figure]:
    limit = 600 if quick else None
    check = run_check("val", limit, per_class=3 if quick else 10)
    test = proxy_check("test", limit)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "au_check.txt").write_text(check.table() + "\n")
    (RESULTS / "au_check.json").write_text(json.dumps({**check.as_dict(), "test_proxy_auc": {
        f"AU{au}": {"class": c, "auc": a} for au, (c, a) in test.items()}}, indent=1))
    note = f"FER+ majority labels, {check.faces} faces with a mesh" + (" (quick subset)" if quick else "")
    figures = []
    for split, proxies in (("val", check.proxy), ("test", test)):
        for au, (cls, auc) in proxies.items():
            goal = PROXY_GOALS.get(au)
            figures.append(Figure("accuracy", f"FER+ {split} ROC AUC AU{au} -> {cls}", auc, "",
                                  f">= {goal}" if goal else "", (auc >= goal) if goal else None, ISSUE, note))
    for clip, correlations in check.correlation.items():
        figures += [Figure("accuracy", f"Pearson r with OpenFace AU{au}, {clip}", r, "", issue=ISSUE)
                    for au, r in correlations.items()]
    for au, (agree, moves) in check.direction.items():
        if moves:
            figures.append(Figure("accuracy", f"AU{au} moves with OpenFace at the clips' changes", agree / moves,
                                  "share", issue=ISSUE, note=f"{agree} of {moves}"))
    for (cls, au), share in check.retained.items():
        figures.append(Figure("accuracy", f"AU{au} kept on {cls} faces held 4 s from the first frame", share, "ratio",
                              ">= 0.8", bool(share >= 0.8) if np.isfinite(share) else None, ISSUE))
    figures.append(Figure("accuracy", "held neutral faces reading no AU above 1 in their last second",
                          check.neutral_held["calm_at_end"], "share", issue=ISSUE,
                          note=f"{check.neutral_held['faces']:.0f} FER+ val faces, "
                               f"{check.neutral_held['episodes']:.0f} AU episodes opened"))
    for clip, opening in check.neutral_openings.items():
        figures.append(Figure("accuracy", f"largest AU in {clip}'s neutral opening", opening["max_au"], "",
                              "<= 1", opening["max_au"] <= 1.0, ISSUE))
        figures.append(Figure("accuracy", f"AU episodes in {clip}'s neutral opening", opening["episodes"], "",
                              "0", opening["episodes"] == 0, ISSUE))
    return figures


def run(quick: bool) -> list[Figure]:
    return au_cost(quick) + au_check(quick)
