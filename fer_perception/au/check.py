"""fer-au-check: how every AU behaves against human labels, a peer on real video, and time.

The measurement the AU estimator is developed against, in one table (also in
``make bench``, section ``action_units``):

* **FER+ proxy** — without AU-coded faces, expressions stand in: each AU's
  ROC AUC for the expression FACS ties it to (AU12 -> happiness, AU4 ->
  anger, ...) on FER2013 faces with FER+ majority labels, each face read as a
  still image (against the population prior). Development uses ``val``; the
  test split is for reporting only.
* **OpenFace** — Pearson r of each AU with OpenFace 2.0.6's trace on the
  shared clips (AU43 against AU45), and whether it moves the way OpenFace's
  does at each of the clips' expression changes (where OpenFace's AUs change
  most; an AU counts there when OpenFace's moves by at least
  :data:`MOVE_MIN`).
* **Held expressions** — FER+ faces of one expression held still for
  :data:`HOLD_S` seconds from the first frame, through the whole expression
  stage (the learned classifier gating calibration, as live): how much of the
  tied AU's first-half-second intensity is left in the last second (1: not
  swallowed by calibration); for neutral faces, how many read no AU above 1
  in the last second (once calibration had its chance) and the AU episodes
  opened. On the clips, the largest AU and the AU
  episodes during their neutral openings (before the first change).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import rankdata

from fer_perception.au.dataset_mesh import face_meshes
from fer_perception.au.estimators import AUEstimator
from fer_perception.emotion.dataset import default_ferplus_path
from fer_perception.emotion.preprocess import fer_window
from fer_perception.expression_pipeline import ExpressionPipeline
from fer_perception.face.head_pose import estimate_head_pose
from fer_perception.offline.analysis import Analyzer
from fer_perception.offline.inputs import AnalysisInput
from fer_perception.paths import data_dir
from fer_perception.types import AU_NUMBERS, ActionUnits, BoundingBox, FaceFrame, TrackedFace

FERPLUS_CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
PROXY_PAIRS = ((1, "surprise"), (2, "surprise"), (4, "anger"), (5, "surprise"), (6, "happiness"), (9, "disgust"),
               (10, "disgust"), (12, "happiness"), (14, "contempt"), (15, "sadness"), (17, "sadness"),
               (20, "fear"), (25, "surprise"), (26, "surprise"))
"""(AU, FER+ class) pairs by EMFACS prototypes; AU14 -> contempt and AU17 -> sadness are informative only."""
PROXY_GOALS = {12: 0.92, 6: 0.75, 1: 0.75, 2: 0.75, 5: 0.75, 26: 0.75, 4: 0.75, 9: 0.75, 10: 0.75, 15: 0.75,
               20: 0.75}
CLIPS = {"single_face": "single_face.mp4", "noface_face": "noface_face.mov"}  # OpenFace CSV stem -> clip
OPENFACE_AU = {43: 45}  # our AU -> OpenFace's column where they differ (eye closure: AU45, blink)
CHANGE_WINDOW = 10      # frames either side of an expression change
MOVE_MIN = 0.5          # OpenFace intensity change that counts as a move
HOLD_S, HOLD_FPS = 4.0, 15.0
HELD_CROP_PX = 112  # the front end's default crop size
HELD = {"anger": (4,), "sadness": (1, 15), "happiness": (12, 6), "surprise": (1, 2, 26)}
EPISODE_KINDS = ("smile", "brow_raise", "frown", "jaw_drop")


@dataclass
class AUCheck:
    """Every figure of the check; ``table`` prints it, ``as_dict`` stores it."""

    split: str
    faces: int
    proxy: dict[int, tuple[str, float]] = field(default_factory=dict)
    correlation: dict[str, dict[int, float]] = field(default_factory=dict)
    direction: dict[int, tuple[int, int]] = field(default_factory=dict)  # AU -> (agreeing, moves)
    retained: dict[tuple[str, int], float] = field(default_factory=dict)
    neutral_held: dict[str, float] = field(default_factory=dict)
    neutral_openings: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"split": self.split, "faces": self.faces,
                "proxy_auc": {f"AU{au}": {"class": c, "auc": a} for au, (c, a) in self.proxy.items()},
                "openface_r": {clip: {f"AU{au}": r for au, r in rs.items()} for clip, rs in self.correlation.items()},
                "direction": {f"AU{au}": {"agree": a, "moves": m} for au, (a, m) in self.direction.items()},
                "held_retained": {f"{c} AU{au}": v for (c, au), v in self.retained.items()},
                "neutral_held": self.neutral_held, "neutral_openings": self.neutral_openings}

    def table(self) -> str:
        head = f"{'AU':5s} {'FER+ ' + self.split + ' AUC':>24s} {'goal':>5s} " + " ".join(
            f"{'r ' + c[:11]:>13s}" for c in self.correlation) + f" {'direction':>9s} {'held: retained':>20s}"
        lines = [head, "-" * len(head)]
        for index, au in enumerate(AU_NUMBERS):
            cls, auc = self.proxy.get(au, ("", float("nan")))
            goal = PROXY_GOALS.get(au)
            proxy = f"{auc:.3f} ({cls})" if cls else "-"
            rs = " ".join(f"{self.correlation[c].get(au, float('nan')):13.2f}" for c in self.correlation)
            agree, moves = self.direction.get(au, (0, 0))
            held = ", ".join(f"{v:.2f} ({c})" for (c, a), v in self.retained.items() if a == au) or "-"
            lines.append(f"AU{au:<3d} {proxy:>24s} {('>=' + str(goal)) if goal else '':>5s} {rs} "
                         f"{(f'{agree}/{moves}' if moves else '-'):>9s} {held:>20s}")
        lines.append("")
        held = self.neutral_held
        lines.append(f"neutral FER+ faces held {HOLD_S:.0f} s: no AU above 1 in the last second on "
                     f"{held.get('calm_at_end', float('nan')):.0%} of {held.get('faces', 0):.0f} faces, "
                     f"AU episodes opened: {held.get('episodes', 0):.0f}")
        for clip, values in self.neutral_openings.items():
            lines.append(f"{clip} neutral opening ({values['frames']:.0f} frames): largest AU {values['max_au']:.2f} "
                         f"(AU{values['max_au_number']:.0f}), AU episodes opened {values['episodes']:.0f}")
        return "\n".join(lines)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), by the rank-sum formula."""
    ranks = rankdata(scores)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ferplus_faces(split: str, limit: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """FER2013 images of ``split`` with their FER+ majority label (index into ``FERPLUS_CLASSES``); faces FER+
    dropped or whose majority is unknown / not a face are left out."""
    fer_path, votes_path = data_dir() / "fer2013" / "fer2013.npz", default_ferplus_path()
    for path in (fer_path, votes_path):
        if not path.is_file():
            raise FileNotFoundError(f"AU check data missing: {path} (set FER_DATA_DIR)")
    data, ferplus = np.load(fer_path), np.load(votes_path)
    columns = [str(c) for c in ferplus["columns"]]
    if tuple(columns[:len(FERPLUS_CLASSES)]) != FERPLUS_CLASSES:
        raise ValueError(f"{votes_path}: unexpected columns {columns}")
    majority = ferplus["votes"].argmax(axis=1)
    chosen = np.flatnonzero((data["split"] == [str(s) for s in data["split_names"]].index(split))
                            & ferplus["labelled"] & (majority < len(FERPLUS_CLASSES)))
    if limit is not None and limit < len(chosen):
        chosen = np.sort(np.random.default_rng(seed).choice(chosen, limit, replace=False))
    return data["images"][chosen], majority[chosen]


def proxy_aucs(intensities: np.ndarray, labels: np.ndarray) -> dict[int, tuple[str, float]]:
    """Per AU of ``PROXY_PAIRS``: its class and the ROC AUC of the AU for that class against all others, over
    the faces on which the AU was estimated."""
    aucs = {}
    for au, cls in PROXY_PAIRS:
        values = intensities[:, AU_NUMBERS.index(au)]
        measured = np.isfinite(values)
        aucs[au] = (cls, roc_auc(values[measured], labels[measured] == FERPLUS_CLASSES.index(cls)))
    return aucs


def still_action_units(estimator: AUEstimator, meshes: np.ndarray) -> list[ActionUnits]:
    """Each mesh's AUs read as a still image: a new track each, so the population prior, not a calibration."""
    result = []
    for index, mesh in enumerate(meshes):
        track = f"still{index}"
        result.append(estimator.estimate(track, mesh, estimate_head_pose(mesh)))
        estimator.drop(track)
    return result


def still_intensities(pipeline: ExpressionPipeline, meshes: np.ndarray) -> np.ndarray:
    """AU intensities of each mesh read as a still image (:func:`still_action_units`); NaN where an AU was not
    estimated (head turned too far, face too small), whose 0 means "no reading", not "absent"."""
    return np.array([np.where(units.estimated, units.intensity, np.nan)
                     for units in still_action_units(pipeline.au_estimator, meshes)])


def openface_trace(clip: str) -> dict[int, dict[int, float]]:
    """OpenFace's AU intensities per 1-based frame (successful frames only), keyed by our AU numbers."""
    path = data_dir() / "reference" / "openface" / f"{clip}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"AU check data missing: {path} (set FER_DATA_DIR)")
    trace = {}
    with path.open() as handle:
        for row in csv.DictReader(handle, skipinitialspace=True):
            if row["success"].strip() == "1":
                trace[int(row["frame"])] = {au: float(row[f"AU{OPENFACE_AU.get(au, au):02d}_r"])
                                            for au in AU_NUMBERS if f"AU{OPENFACE_AU.get(au, au):02d}_r" in row}
    return trace


def clip_trace(analyzer: Analyzer, clip: str) -> tuple[dict[int, np.ndarray], list]:
    """Our raw AU intensities per 1-based frame of a shared clip (first face), and the clip's events."""
    path = data_dir() / "media" / CLIPS[clip]
    if not path.is_file():
        raise FileNotFoundError(f"AU check data missing: {path} (set FER_DATA_DIR)")
    ours, events = {}, []
    for analysed in analyzer.analyse(AnalysisInput(path, None, 30.0, "camera").frames()):
        expressions = analysed.result.expressions
        events += analysed.result.events
        if expressions and expressions[0].aus.estimated.all():
            ours[analysed.frame.index + 1] = expressions[0].aus.intensity
    events += analyzer.finish()
    return ours, events


def change_frames(trace: dict[int, dict[int, float]]) -> list[int]:
    """Frames where OpenFace's AUs change most: local maxima of the summed before/after difference."""
    frames = sorted(trace)
    values = np.array([[trace[f][au] for au in sorted(trace[frames[0]])] for f in frames])
    w = CHANGE_WINDOW
    score = np.zeros(len(frames))
    for i in range(3, len(frames) - 3):
        before, after = values[max(0, i - w):i], values[i + 1:i + 1 + w]
        score[i] = np.abs(after.mean(axis=0) - before.mean(axis=0)).sum()
    changes = []
    for i in np.argsort(-score):
        if score[i] < 2.0:
            break
        if all(abs(i - j) > w for j in changes):
            changes.append(int(i))
    return sorted(frames[i] for i in changes)


def directions(ours: dict[int, np.ndarray], theirs: dict[int, dict[int, float]],
               changes: list[int]) -> dict[int, tuple[int, int]]:
    """Per AU: at how many expression changes OpenFace's AU moved, and at how many of those ours moved the
    same way."""
    result = {}
    for index, au in enumerate(AU_NUMBERS):
        agree = moves = 0
        for change in changes:
            before = [f for f in range(change - CHANGE_WINDOW, change - 1) if f in ours and f in theirs]
            after = [f for f in range(change + 2, change + CHANGE_WINDOW + 1) if f in ours and f in theirs]
            if len(before) < 3 or len(after) < 3 or au not in theirs[before[0]]:
                continue
            their_move = np.mean([theirs[f][au] for f in after]) - np.mean([theirs[f][au] for f in before])
            if abs(their_move) < MOVE_MIN:
                continue
            our_move = np.mean([ours[f][index] for f in after]) - np.mean([ours[f][index] for f in before])
            moves += 1
            agree += int(np.sign(our_move) == np.sign(their_move) and abs(our_move) >= 0.1)
        result[au] = (agree, moves)
    return result


def held_crop(face: np.ndarray) -> np.ndarray:
    """An aligned-crop-sized gray image whose emotion-model window is the FER2013 face itself."""
    left, top, side = fer_window(HELD_CROP_PX)
    crop = np.zeros((HELD_CROP_PX, HELD_CROP_PX), np.uint8)
    crop[top:top + side, left:left + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(crop, cv2.COLOR_GRAY2RGB)


def hold(pipeline: ExpressionPipeline, mesh: np.ndarray, face: np.ndarray, track: str,
         rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """AU intensities of one face held still from its first frame (mesh jitter of a live track), and the
    AU episodes it opened."""
    crop, pose = held_crop(face), estimate_head_pose(mesh)
    eye_px = float(np.linalg.norm(mesh[33, :2] - mesh[263, :2]))
    trace, episodes = [], 0
    frames = int(HOLD_S * HOLD_FPS)
    for k in range(frames):
        jittered = mesh + rng.normal(0.0, 0.004 * eye_px, mesh.shape)
        tracked = TrackedFace(track, BoundingBox(0, 0, 1, 1), 1.0, jittered, pose)
        result = pipeline.process(FaceFrame(int(k * 1e9 / HOLD_FPS), 1, 1, [tracked]), [crop])
        trace.append(result.expressions[0].aus.intensity)
        episodes += sum(e.kind in EPISODE_KINDS and e.phase == 0 for e in result.events)
    pipeline.process(FaceFrame(int(frames * 1e9 / HOLD_FPS), 1, 1, [], lost=[track]), [])
    return np.array(trace), episodes


def held_expressions(pipeline: ExpressionPipeline, meshes: np.ndarray, faces: np.ndarray, labels: np.ndarray,
                     per_class: int) -> tuple[dict[tuple[str, int], float], dict[str, float]]:
    """Retained share of each tied AU on held expressive faces; AU activity on held neutral faces."""
    rng = np.random.default_rng(0)
    first, last = int(0.5 * HOLD_FPS), int((HOLD_S - 1.0) * HOLD_FPS)
    retained = {}
    for cls, aus in HELD.items():
        chosen = np.flatnonzero(labels == FERPLUS_CLASSES.index(cls))[:per_class * 3]
        traces = [hold(pipeline, meshes[i], faces[i], f"{cls}{i}", rng)[0] for i in chosen]
        for au in aus:
            column = AU_NUMBERS.index(au)
            ratios = [t[last:, column].mean() / t[:first, column].mean() for t in traces
                      if t[:first, column].mean() >= 1.0][:per_class]
            retained[(cls, au)] = float(np.median(ratios)) if ratios else float("nan")
    neutral = np.flatnonzero(labels == FERPLUS_CLASSES.index("neutral"))[:per_class]
    held = [hold(pipeline, meshes[i], faces[i], f"neutral{i}", rng) for i in neutral]
    calm = np.mean([t[last:, :-1].max() <= 1.0 for t, _ in held]) if held else float("nan")
    return retained, {"calm_at_end": float(calm), "episodes": float(sum(e for _, e in held)),
                      "faces": float(len(held))}


def neutral_opening(ours: dict[int, np.ndarray], events: list, first_change: int, fps: float) -> dict[str, float]:
    """Largest AU (AU43 aside: blinks are not expressions) and AU episodes before the first change."""
    frames = [f for f in ours if f < first_change - 2]
    values = np.array([ours[f][:-1] for f in frames]) if frames else np.zeros((1, len(AU_NUMBERS) - 1))
    column = int(np.unravel_index(values.argmax(), values.shape)[1])
    end_ns = (first_change - 2) * 1e9 / fps
    episodes = sum(e.kind in EPISODE_KINDS and e.phase == 0 and e.start_ns < end_ns for e in events)
    return {"frames": float(len(frames)), "max_au": float(values.max()), "max_au_number": float(AU_NUMBERS[column]),
            "episodes": float(episodes)}


def proxy_check(split: str, limit: int | None = None) -> dict[int, tuple[str, float]]:
    """The FER+ proxy AUCs alone (``make bench`` reports them on the test split too)."""
    images, labels = ferplus_faces(split, limit)
    meshes, found = face_meshes(images, quiet=True)
    analyzer = Analyzer.from_config(warn=lambda message: None)
    try:
        return proxy_aucs(still_intensities(analyzer.pipeline, meshes[found]), labels[found])
    finally:
        analyzer.close()


def run_check(split: str = "val", limit: int | None = None, per_class: int = 10) -> AUCheck:
    """Every figure of the check, with the package's configuration (the estimator the graph runs)."""
    images, labels = ferplus_faces(split, limit)
    meshes, found = face_meshes(images, quiet=True)
    analyzer = Analyzer.from_config(warn=lambda message: None)
    pipeline = analyzer.pipeline
    check = AUCheck(split, int(found.sum()))
    check.proxy = proxy_aucs(still_intensities(pipeline, meshes[found]), labels[found])
    all_moves: dict[int, list[tuple[int, int]]] = {au: [] for au in AU_NUMBERS}
    for clip in CLIPS:
        clip_analyzer = Analyzer.from_config(warn=lambda message: None)
        ours, events = clip_trace(clip_analyzer, clip)
        clip_analyzer.close()
        theirs = openface_trace(clip)
        common = sorted(set(ours) & set(theirs))
        check.correlation[clip] = {}
        for index, au in enumerate(AU_NUMBERS):
            a = np.array([ours[f][index] for f in common])
            b = np.array([theirs[f].get(OPENFACE_AU.get(au, au), theirs[f].get(au, np.nan)) for f in common]) \
                if au in theirs[common[0]] else None
            if b is not None and a.std() > 0 and b.std() > 0:
                check.correlation[clip][au] = float(np.corrcoef(a, b)[0, 1])
        changes = change_frames(theirs)
        for au, moved in directions(ours, theirs, changes).items():
            all_moves[au].append(moved)
        if changes:
            check.neutral_openings[clip] = neutral_opening(ours, events, changes[0], 30.0)
    check.direction = {au: (sum(a for a, _ in m), sum(n for _, n in m)) for au, m in all_moves.items()}
    check.retained, check.neutral_held = held_expressions(pipeline, meshes[found], images[found], labels[found],
                                                          per_class)
    analyzer.close()
    return check


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("train", "val", "test"), default="val",
                        help="FER2013 split for the FER+ proxy (default: val; test only to report)")
    parser.add_argument("--limit", type=int, default=None, help="faces sampled from the split (default: all)")
    parser.add_argument("--per-class", type=int, default=10, help="faces held per expression (default: 10)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    options = parser.parse_args(argv)
    if options.limit is not None and options.limit < 50:
        parser.error("--limit must be at least 50 faces")
    if options.per_class < 1:
        parser.error("--per-class must be at least 1")
    try:
        check = run_check(options.split, options.limit, options.per_class)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"fer-au-check: {error}")
    print(check.table())
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(check.as_dict(), indent=1))
        print(f"wrote {options.json}")


if __name__ == "__main__":
    main()
