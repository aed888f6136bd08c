"""fer-train-au: train or fine-tune a learned AU network on a CSV of face images and AU intensities.

The learned AU estimator (:mod:`fer_perception.au.learned`) needs networks
trained on AU-labelled faces such as DISFA or BP4D; this tool makes them.

CSV: one row per face image. Column ``image`` is the image's path, relative
to the CSV's folder or absolute. AU columns are named like ``AU12``,
``AU01`` or ``AU12_r`` (any case) and hold FACS intensities 0-5, filled on
every row for the AUs trained. The AU list defaults to every AU column the
estimator can use (AU43 comes from geometric eye closure and is skipped);
``--aus`` picks some. An optional ``subject`` column keeps each subject's
rows on one side of the validation split, since video frames of one person
are not independent. Other columns are ignored.

Images are whole face images by default: the face front end finds the
largest face in each and cuts the eye-aligned crop the pipeline uses at run
time, so the network learns from the crops it will see; rows where no face is
found are skipped and counted. With ``--aligned`` the images are such crops
already (square; they are resized to the input size).

Training minimises the mean squared error on the 0-5 scale with AdamW and a
cosine learning-rate decay, on random horizontal flips and shifts of up to
1/16 of the side; the seed fixes the split, initialisation and batches.
``--init`` fine-tunes an existing checkpoint, keeping its architecture,
input format, normalisation and AU list. The checkpoint is written with its
metadata and provenance (see :mod:`fer_perception.au.learned`).
"""
from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from fer_perception.au.au_network import DEFAULT_DROPOUT, DEFAULT_WIDTHS, InputSpec, build_network, prepare_crop
from fer_perception.au.au_network import to_tensor
from fer_perception.au.learned import AUCheckpointError, AUModel, LEARNABLE_AUS, check_aus, load_checkpoint
from fer_perception.au.learned import save_checkpoint
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig

AU_COLUMN = re.compile(r"^au0*(\d+)(_r)?$", re.IGNORECASE)
ARCHITECTURE = "au_net"
DEFAULT_INPUT_SIZE = 96
MAX_SHIFT_FRACTION = 1.0 / 16.0
WEIGHT_DECAY = 1e-4


@dataclass(frozen=True)
class LabelledImages:
    """The rows of a training CSV: image paths, their AU intensities (N x K) and split groups."""

    paths: list[Path]
    labels: np.ndarray
    groups: list[str]


def au_columns(fieldnames: list[str]) -> dict[int, str]:
    """FACS number to column name for every AU intensity column; ValueError if two columns name one AU."""
    columns: dict[int, str] = {}
    for name in fieldnames:
        match = AU_COLUMN.match(name.strip())
        if not match:
            continue
        au = int(match.group(1))
        if au in columns:
            raise ValueError(f"columns {columns[au]!r} and {name!r} both hold AU{au}")
        columns[au] = name
    return columns


def choose_aus(columns: dict[int, str], requested: tuple[int, ...] | None) -> tuple[int, ...]:
    """The AUs to train: ``requested`` (each must have a column) or every learnable AU with a column."""
    if requested is None:
        aus = tuple(au for au in LEARNABLE_AUS if au in columns)
        if not aus:
            raise ValueError(f"the CSV has no intensity column of a learnable AU ({list(LEARNABLE_AUS)})")
        return aus
    check_aus(requested)
    missing = [au for au in requested if au not in columns]
    if missing:
        raise ValueError(f"the CSV has no column for AU(s) {missing}")
    return requested


def read_csv(path: Path, requested: tuple[int, ...] | None) -> tuple[tuple[int, ...], LabelledImages]:
    """The trained AUs and the labelled rows of a training CSV; ValueError naming the row for a bad value."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "image" not in reader.fieldnames:
            raise ValueError(f"{path} needs an 'image' column")
        columns = au_columns(reader.fieldnames)
        aus = choose_aus(columns, requested)
        paths, labels, groups = [], [], []
        for line, row in enumerate(reader, start=2):
            image = Path(row["image"].strip()).expanduser()
            paths.append(image if image.is_absolute() else path.parent / image)
            labels.append([_intensity(row[columns[au]], path, line, columns[au]) for au in aus])
            groups.append(row.get("subject") or f"row{line}")
    if not paths:
        raise ValueError(f"{path} has no rows")
    return aus, LabelledImages(paths, np.array(labels, np.float32), groups)


def _intensity(text: str | None, path: Path, line: int, column: str) -> float:
    try:
        value = float(text or "")
    except ValueError:
        raise ValueError(f"{path} line {line}: {column}={text!r} is not a number") from None
    if not 0.0 <= value <= 5.0:
        raise ValueError(f"{path} line {line}: {column}={value} is outside the FACS range 0-5")
    return value


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def face_crops(paths: list[Path], aligned: bool, quiet: bool) -> list[np.ndarray | None]:
    """The aligned RGB crop of each image (the image itself with ``aligned``), None where no face was found."""
    images = tqdm(paths, desc="faces", unit="image", disable=quiet)
    if aligned:
        return [read_rgb(path) for path in images]
    # Unrelated images in a row: detect on every one, and let a track end as soon as its face is gone.
    front_end = FaceFrontEnd(FaceFrontEndConfig(min_hits=1, max_misses=0, detect_interval=1))
    try:
        crops: list[np.ndarray | None] = []
        for stamp, path in enumerate(images):
            image = read_rgb(path)
            faces = front_end.process(image, stamp).faces
            largest = max(faces, key=lambda face: face.box.area, default=None)
            crops.append(None if largest is None else front_end.crop(image, largest))
        return crops
    finally:
        front_end.close()


def split(groups: list[str], val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation row indices, whole groups on one side; about ``val_fraction`` of the groups in val."""
    names = sorted(set(groups))
    rng.shuffle(names)
    count = 0
    if val_fraction > 0 and len(names) > 1:
        count = min(max(round(val_fraction * len(names)), 1), len(names) - 1)
    held_out = set(names[:count])
    in_val = np.array([group in held_out for group in groups])
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


def new_model(aus: tuple[int, ...], size: int, channels: int, prepared: np.ndarray) -> AUModel:
    """A fresh network for ``aus``, normalised by the per-channel mean and spread of the training crops."""
    pixels = prepared.reshape(-1, channels).astype(np.float64) / 255.0
    spec = InputSpec(size, channels, tuple(pixels.mean(axis=0).tolist()),
                     tuple(np.maximum(pixels.std(axis=0), 1e-3).tolist()))
    kwargs = {"num_aus": len(aus), "in_channels": channels, "widths": list(DEFAULT_WIDTHS), "dropout": DEFAULT_DROPOUT}
    return AUModel(build_network(ARCHITECTURE, **kwargs), aus, spec, ARCHITECTURE, kwargs)


def initial_model(options: argparse.Namespace) -> AUModel:
    """The ``--init`` checkpoint's model, after checking the options do not ask to change what it fixes."""
    model = load_checkpoint(options.init)
    for option, value in (("aus", model.aus), ("input_size", model.spec.size), ("channels", model.spec.channels)):
        if getattr(options, option) not in (None, value):
            raise ValueError(f"{options.init} has {option} {value}; fine-tuning with --init keeps it")
    return model


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and shifts (edges replicated) of a normalised N x C x S x S batch."""
    flip = torch.rand(len(batch), generator=generator) < 0.5
    batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)
    size = batch.shape[-1]
    pad = max(1, round(size * MAX_SHIFT_FRACTION))
    padded = F.pad(batch, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (len(batch), 2), generator=generator).tolist()
    return torch.stack([padded[i, :, y:y + size, x:x + size] for i, (y, x) in enumerate(offsets)])


def predict(model: AUModel, prepared: np.ndarray, batch_size: int) -> np.ndarray:
    """Intensities (N x K) of prepared crops, in eval mode."""
    model.network.eval()
    with torch.inference_mode():
        return np.concatenate([model.network(to_tensor(prepared[start:start + batch_size], model.spec)).numpy()
                               for start in range(0, len(prepared), batch_size)])


def train(model: AUModel, prepared: np.ndarray, labels: np.ndarray, val: tuple[np.ndarray, np.ndarray],
          options: argparse.Namespace) -> None:
    """Train in place, reporting the validation mean absolute error after each epoch when there are val rows."""
    generator = torch.Generator().manual_seed(options.seed)
    optimizer = torch.optim.AdamW(model.network.parameters(), lr=options.lr, weight_decay=WEIGHT_DECAY)
    batches_per_epoch = math.ceil(len(prepared) / options.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, options.epochs * batches_per_epoch)
    targets = torch.from_numpy(labels)
    for epoch in range(options.epochs):
        model.network.train()
        order = torch.randperm(len(prepared), generator=generator).numpy()
        batches = np.array_split(order, batches_per_epoch)  # near-equal sizes: never a lone face for BatchNorm
        progress = tqdm(batches, desc=f"epoch {epoch + 1}/{options.epochs}", unit="batch", leave=False,
                        disable=options.quiet)
        for rows in progress:
            inputs = augment(to_tensor(prepared[rows], model.spec), generator)
            loss = F.mse_loss(model.network(inputs), targets[torch.from_numpy(rows)])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            progress.set_postfix(loss=f"{loss.item():.3f}")
        if len(val[0]) and not options.quiet:
            mae = float(np.abs(predict(model, val[0], options.batch_size) - val[1]).mean())
            tqdm.write(f"epoch {epoch + 1}: val MAE {mae:.3f}")


def _say(options: argparse.Namespace, message: str) -> None:
    if not options.quiet:
        tqdm.write(message)


def au_list(text: str) -> tuple[int, ...]:
    """``--aus`` as FACS numbers: "1,2,4" or "AU1,AU02"."""
    return tuple(int(item.strip().upper().removeprefix("AU")) for item in text.split(","))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fer-train-au", description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="CSV with an 'image' column and AU intensity columns (AU12, AU01_r)")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write, e.g. models/au_mine.pt")
    parser.add_argument("--aus", type=au_list,
                        help="comma-separated FACS numbers to train (default: every AU column of the CSV)")
    parser.add_argument("--aligned", action="store_true", help="images are aligned face crops already")
    parser.add_argument("--init", type=Path, help="fine-tune this checkpoint instead of starting afresh")
    parser.add_argument("--input-size", type=int,
                        help=f"network input side in pixels (default {DEFAULT_INPUT_SIZE})")
    parser.add_argument("--channels", type=int, choices=(1, 3), help="1 = grayscale (default), 3 = RGB")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW, cosine decay)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="fraction of subjects (or rows) held out for validation; 0 trains on all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    options = parser.parse_args(argv)
    if options.epochs < 1 or options.batch_size < 2 or not 0.0 <= options.val_fraction < 1.0:
        parser.error("need --epochs >= 1, --batch-size >= 2 and 0 <= --val-fraction < 1")
    return options


def run(options: argparse.Namespace, command: str) -> AUModel:
    """Read, crop, split, train and save as ``options`` say; the trained model."""
    init = initial_model(options) if options.init else None
    aus, rows = read_csv(options.csv, options.aus or (init.aus if init else None))
    crops = face_crops(rows.paths, options.aligned, options.quiet)
    kept = np.array([index for index, crop in enumerate(crops) if crop is not None], int)
    if len(kept) < 2:
        raise ValueError(f"need at least 2 faces to train; found {len(kept)} in {len(crops)} images")
    _say(options, f"{len(kept)} faces in {len(crops)} images; training AUs {list(aus)}")
    size = init.spec.size if init else options.input_size or DEFAULT_INPUT_SIZE
    channels = init.spec.channels if init else options.channels or 1
    prepared = np.stack([prepare_crop(crops[index], size, channels) for index in kept])
    labels = rows.labels[kept]
    train_rows, val_rows = split([rows.groups[index] for index in kept], options.val_fraction,
                                 np.random.default_rng(options.seed))
    torch.manual_seed(options.seed)
    model = init or new_model(aus, size, channels, prepared[train_rows])
    val_prepared, val_labels = prepared[val_rows], labels[val_rows]
    train(model, prepared[train_rows], labels[train_rows], (val_prepared, val_labels), options)
    per_au = {}
    if len(val_rows):
        errors = np.abs(predict(model, val_prepared, options.batch_size) - val_labels).mean(axis=0)
        per_au = {f"AU{au}": round(float(error), 4) for au, error in zip(aus, errors)}
    model.training = {"csv": str(options.csv), "rows": len(crops), "faces": len(kept),
                      "train_faces": len(train_rows), "val_faces": len(val_rows), "epochs": options.epochs,
                      "batch_size": options.batch_size, "lr": options.lr, "seed": options.seed,
                      "init": str(options.init) if options.init else None,
                      "val_mae": round(float(np.mean(list(per_au.values()))), 4) if per_au else None,
                      "val_mae_per_au": per_au, "command": command}
    save_checkpoint(options.out, model)
    return model


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    options = parse_args(arguments)
    try:
        model = run(options, " ".join(["fer-train-au", *arguments]))
    except (ValueError, AUCheckpointError) as error:
        sys.exit(f"fer-train-au: {error}")
    per_au = model.training["val_mae_per_au"]
    _say(options, f"wrote {options.out}: AUs {list(model.aus)}"
                  + (f"; val MAE {model.training['val_mae']:.3f} ({per_au})" if per_au else ""))


if __name__ == "__main__":
    main()
