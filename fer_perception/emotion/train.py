"""Training the emotion network on FER2013 (CLI ``fer-train``, ``python -m fer_perception.emotion.train``).

Trains on the ``train`` split and selects the epoch by ``val`` accuracy;
``test`` is scored once, at the end, for the report. ``--train-on-val`` is for
the final refit of a recipe already chosen by val: the val faces join the
training set, so nothing is selected by them (the last epoch is saved) and
their accuracy is reported but is no longer a held-out figure. Built for a small CPU:
bfloat16 autocast where the CPU has bfloat16 arithmetic (about 2x faster on
AVX-512 BF16 CPUs; emulated on AVX2-only CPUs it is 10-20x slower than
float32, so it is off there by default), augmentation in the training
process, and a checkpoint after every epoch (model, optimizer,
scheduler, RNG states, best-val so far; written atomically) so ``--resume``
continues exactly where an interrupted run stopped. ``--device cuda`` (the
default where torch sees a GPU) trains the same recipe on a GPU; the
augmentation stays on the CPU, so its random stream is the same on both.
Outputs in ``--out``: ``last.pt`` (resume state), ``best.pt`` (best-by-val
model in the shipped format), ``report.json`` (val accuracy, with and without
flip TTA, per-class recall, macro-F1, calibration error, confusion matrices,
history). Test is
scored only with ``--score-test``: runs are compared on val alone, and test is
scored once, with ``fer-evaluate``, on the model that is shipped.

``--labels ferplus`` trains on the FER2013 faces with the FER+ crowd votes
(``--ferplus``, row-aligned to ``--data``) instead of FER2013's labels: the
loss is the cross-entropy to each face's vote distribution over the seven
FER2013 classes (soft targets; class weights, label smoothing and
distillation apply as with FER2013's labels), and faces FER+ gives no target
are left out
(unlabelled, mostly ``unknown``/``NF`` votes, or only ``contempt`` votes:
contempt votes are dropped and the model keeps its seven outputs; the rules
and their reasons are in :mod:`fer_perception.emotion.dataset`). The epoch is
then selected by the FER+ majority accuracy on val (over those faces,
``val_ferplus_majority_accuracy``); ``val_accuracy`` is FER2013-label val
accuracy for both label sets, so a FER+ run can be held to what it costs on
FER2013. Class weights count each class's FER+ majority faces. A checkpoint
resumes only with the label set it was trained with.

``--teacher MODEL`` adds knowledge distillation (Hinton et al., 2015): the
frozen teacher classifies the same augmented batch and the loss mixes the
hard-label loss with the KL divergence of the temperature-softened
predictions. FER2013's labels are noisy; a teacher's soft targets say which
faces are ambiguous, which lets a student of any architecture (including a
wider one) learn from a previous model rather than from the labels alone.
Several teacher files form an ensemble teacher whose logits are the mean of
theirs (ensemble distillation: independently trained models err differently,
so their mean is a better teacher than any one of them, and the student is
still one network). ``--teacher-flip`` averages the teacher's logits over the
batch and its mirror image: the student learns from the teacher with flip TTA,
which it then matches without TTA.

``--swa`` (stochastic weight averaging, Izmailov et al., 2018), for a run that
starts from a trained model (``--init``): the learning rate stays at ``--lr``
after the warm-up, so SGD keeps moving around the minimum it started in, and the
model validated and saved is the equal-weight mean of the weights at the end of
each epoch, whose BatchNorm statistics are recomputed on the un-augmented
training faces. The mean of such points lies in a flatter region than any one
of them (Izmailov et al. report better generalisation than the final point).
On the shipped model it scored below the ``--ema-decay`` fine-tune on val
(68.0 against 68.6 %, model card) but, flip-averaged, served as a teacher.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn
from tqdm import tqdm

from fer_perception.emotion.checkpoint import ModelLoadError, ModelSpec, atomic_save, load_model, save_model
from fer_perception.emotion.dataset import (FERPLUS_RULES, INPUT_SIZE, Augmentation, DatasetError, FaceSet,
                                            FerPlusTargets, class_weights, default_ferplus_path, load_ferplus,
                                            load_npz, normalise, pixel_statistics)
from fer_perception.emotion.evaluate import (network_accuracy, network_probabilities, predict_probabilities,
                                             probability_metrics)
from fer_perception.emotion.labels import EMOTIONS, canonical_label
from fer_perception.emotion.network import build_network
from fer_perception.hardware import cpu_description
from fer_perception.paths import data_dir

ARCHITECTURE = "fer_resnet"
RESUME_FILE = "last.pt"
BEST_FILE = "best.pt"
REPORT_FILE = "report.json"
RESUME_IGNORED = ("resume", "stop_after", "threads", "out", "device", "score_test")
"""Arguments that may differ between a run and its resumption; all others must match."""
VAL_METRICS = {"val_accuracy": "val accuracy", "val_ferplus_majority_accuracy": "val FER+ majority accuracy"}
"""The val figures of each epoch by their key in history, checkpoint and model metadata, with what they are called:
FER2013-label accuracy over all val faces (with either ``--labels``, so a FER+ run can be held to what it costs on
FER2013), and with ``--labels ferplus`` FER+ majority accuracy over the val faces FER+ gives a target."""
SELECTION_METRIC = {"fer2013": "val_accuracy", "ferplus": "val_ferplus_majority_accuracy"}
"""Per ``--labels``, the figure of :data:`VAL_METRICS` that selects the epoch."""
BEFORE_LABELS = {"labels": "fer2013", "ferplus": None}
"""What a checkpoint written before ``--labels`` existed was trained on, for ``--resume``."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fer-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=data_dir() / "fer2013" / "fer2013.npz", help="FER2013-layout .npz (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("out/emotion_training"), help="output folder (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=60, help="total epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1, help="peak SGD learning rate (default: %(default)s)")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--warmup-epochs", type=float, default=2.0, help="linear warm-up before the cosine decay")
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--class-weight-power", type=float, default=0.5,
                        help="loss weight of a class ~ count**-power; 0 disables (default: %(default)s)")
    parser.add_argument("--augment-strength", type=float, default=0.6,
                        help="scales dataset.Augmentation's geometric and photometric ranges (default: %(default)s)")
    parser.add_argument("--erase-probability", type=float, default=0.25, help="random erasing per image")
    parser.add_argument("--widths", type=int, nargs=4, default=[32, 64, 128, 256])
    parser.add_argument("--blocks", type=int, nargs=4, default=[1, 1, 1, 1])
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--labels", choices=tuple(SELECTION_METRIC), default="fer2013",
                        help="targets: FER2013's labels, or the FER+ vote distributions over the same 7 classes "
                             "(soft targets; the epoch is then selected by FER+ majority accuracy on val) "
                             "(default: %(default)s)")
    parser.add_argument("--ferplus", type=Path, default=None, metavar="VOTES",
                        help="with --labels ferplus: FER+ votes row-aligned to --data "
                             f"(default: {default_ferplus_path()})")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from the weights of this model file (same architecture; --blocks may add "
                             "blocks, which start as identities), e.g. to fine-tune")
    parser.add_argument("--teacher", type=Path, nargs="+", default=None, metavar="MODEL",
                        help="distil from this model file (any architecture with the same labels and input), or "
                             "from the mean logits of several: the loss adds the softened predictions on the same "
                             "augmented batch")
    parser.add_argument("--teacher-flip", action="store_true",
                        help="with --teacher: its logits are the mean of those for the batch and its mirror image "
                             "(a flip-TTA teacher, stronger than the teacher alone)")
    parser.add_argument("--distill-weight", type=float, default=0.5,
                        help="share of the distillation term in the loss with --teacher (default: %(default)s)")
    parser.add_argument("--distill-temperature", type=float, default=2.0,
                        help="softmax temperature of teacher and student in the distillation term (default: %(default)s)")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bfloat16 autocast (default: on where the CPU has native bfloat16 arithmetic, "
                             "AVX-512 BF16 or AMX; float32 elsewhere)")
    parser.add_argument("--ema-decay", type=float, default=0.0,
                        help="keep an exponential moving average of the weights (and BN statistics) with this decay "
                             "per step, and validate and save it instead of the raw weights (0: off)")
    parser.add_argument("--swa", action="store_true",
                        help="stochastic weight averaging: after the warm-up the learning rate stays at --lr, and the "
                             "equal-weight mean of the weights at each epoch's end (BatchNorm statistics recomputed "
                             "on the training faces) is validated and saved; meant for use with --init")
    parser.add_argument("--train-on-val", action="store_true",
                        help="train on train + val and save the last epoch (a refit of a recipe chosen by val; "
                             "val accuracy is then not held out)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="train on a GPU (cuda) or the CPU; auto: cuda where torch sees one (default: %(default)s)")
    parser.add_argument("--score-test", action="store_true",
                        help="also score the selected model on test in the final report (off by default: compare "
                             "runs on val, and score test once, with fer-evaluate, on the model that is shipped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: %(default)s)")
    parser.add_argument("--resume", action="store_true", help=f"continue from OUT/{RESUME_FILE}")
    parser.add_argument("--stop-after", type=int, default=0, help="stop after this many epochs in this invocation (0: run to the end)")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device cuda: this torch ({torch.__version__}) sees no CUDA device")
    if args.bf16 is None:
        args.bf16 = torch.cuda.is_bf16_supported() if args.device == "cuda" else cpu_has_bfloat16()
    if not 0.0 <= args.distill_weight <= 1.0 or args.distill_temperature <= 0.0:
        parser.error("--distill-weight must lie in [0, 1] and --distill-temperature be positive")
    if args.teacher_flip and args.teacher is None:
        parser.error("--teacher-flip needs --teacher")
    if args.swa and args.ema_decay > 0:
        parser.error("--swa and --ema-decay are two kinds of weight average; choose one")
    if args.labels == "ferplus":
        args.ferplus = args.ferplus or default_ferplus_path()
    elif args.ferplus is not None:
        parser.error("--ferplus needs --labels ferplus")
    return args


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively; elsewhere torch emulates it, far slower than float32."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def training_config(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments that define the run (JSON-friendly), stored with checkpoints and reports."""
    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        return [plain(item) for item in value] if isinstance(value, list) else value
    return {key: plain(value) for key, value in vars(args).items() if key not in RESUME_IGNORED}


def warmup_cosine(total_steps: int, warmup_steps: int):
    """LR factor per step: linear warm-up to 1, then cosine decay to 0 at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return factor


def warmup_constant(warmup_steps: int):
    """LR factor per step: linear warm-up to 1, then 1 (the schedule of ``--swa``)."""
    return lambda step: min(1.0, (step + 1) / max(1, warmup_steps))


def recompute_batch_norm(network: nn.Module, images: torch.Tensor, mean: float, std: float,
                         most_faces: int = 8192, batch_size: int = 512) -> None:
    """Set ``network``'s BatchNorm statistics to those of the (un-augmented) ``images``, or of every k-th one,
    k = len(images) // most_faces, where there are more: averaged weights have statistics of their own, which
    neither the averaged nor any one model's running statistics are."""
    images = images[::max(1, len(images) // most_faces)]
    batches = (normalise(images[start:start + batch_size], mean, std)
               for start in range(0, len(images), batch_size))
    update_bn(batches, network, device=next(network.parameters()).device)
    network.eval()


def scaled_augmentation(strength: float, erase_probability: float) -> Augmentation:
    """``Augmentation``'s default ranges times ``strength`` (1 = the defaults), with the given erasing probability.

    The slim network under-fits FER2013 with the full ranges (augmented training accuracy stays at the
    validation accuracy), so training uses weaker ones by default.
    """
    base = Augmentation()
    low, high = base.scale_range
    return replace(base, max_rotation_deg=base.max_rotation_deg * strength,
                   scale_range=(1 - (1 - low) * strength, 1 + (high - 1) * strength),
                   max_shift=base.max_shift * strength, brightness=base.brightness * strength,
                   contrast=base.contrast * strength, erase_probability=erase_probability)


def _deepens(source: dict[str, Any], target: dict[str, Any]) -> bool:
    """Whether ``target``'s network is ``source``'s with the same widths and at least as many blocks per stage."""
    return ({**source, "blocks": target["blocks"]} == target
            and all(have <= want for have, want in zip(source["blocks"], target["blocks"])))


def _load_initial_weights(network: nn.Module, kwargs: dict[str, Any], path: Path) -> dict[str, Any]:
    """Copy the weights of model file ``path`` into ``network`` (same architecture and arguments, except that
    ``network`` may have more blocks per stage); returns that model's training metadata, so a fine-tuned model
    records its whole lineage. Blocks the file lacks keep their identity initialisation (last BatchNorm scale
    zero), so a deepened network starts out computing exactly the file's function (Net2DeeperNet, Chen et al.,
    2016) and the fine-tune can put the new capacity to use without first undoing a random start."""
    try:
        source, spec = load_model(path)
    except ModelLoadError as error:
        raise SystemExit(f"--init: {error}") from error
    if spec.architecture != ARCHITECTURE or not _deepens(spec.kwargs, kwargs):
        raise SystemExit(f"--init: {path} is {spec.architecture} {spec.kwargs}, not {ARCHITECTURE} {kwargs} "
                         "(or that with fewer blocks per stage)")
    network.load_state_dict(source.state_dict(), strict=False)
    return spec.training


def _load_teacher(path: Path, mean: float, std: float) -> tuple[nn.Module, dict[str, Any]]:
    """The frozen teacher network of ``--teacher`` and its training metadata; it must share the student's
    labels, input size and input normalisation, so both see the same batch."""
    try:
        teacher, spec = load_model(path)
    except ModelLoadError as error:
        raise SystemExit(f"--teacher: {error}") from error
    same_normalisation = math.isclose(spec.mean, mean, rel_tol=1e-6) and math.isclose(spec.std, std, rel_tol=1e-6)
    if spec.labels != EMOTIONS or spec.input_size != INPUT_SIZE or not same_normalisation:
        raise SystemExit(f"--teacher: {path} has labels {list(spec.labels)}, input {spec.input_size}, "
                         f"normalisation {spec.mean:.6f}/{spec.std:.6f}; the student needs {list(EMOTIONS)}, "
                         f"{INPUT_SIZE}, {mean:.6f}/{std:.6f}")
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher, spec.training


class TeacherEnsemble(nn.Module):
    """The frozen teachers of ``--teacher`` as one network whose logits are the mean of theirs."""

    def __init__(self, teachers: list[nn.Module]) -> None:
        super().__init__()
        self.teachers = nn.ModuleList(teachers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack([teacher(inputs).float() for teacher in self.teachers]).mean(0)


def _load_teachers(paths: list[Path], mean: float, std: float) -> tuple[TeacherEnsemble, list[dict[str, Any]]]:
    """The ensemble teacher of ``--teacher`` and each teacher's training metadata, in argument order."""
    loaded = [_load_teacher(path, mean, std) for path in paths]
    return TeacherEnsemble([teacher for teacher, _ in loaded]).eval(), [training for _, training in loaded]


def _check_classes(classes: tuple[str, ...], path: Path) -> None:
    if tuple(canonical_label(name) for name in classes) != EMOTIONS:
        raise SystemExit(f"{path}: classes {list(classes)} are not FER2013's {list(EMOTIONS)} in that order")


def _hard_labels(targets: torch.Tensor) -> torch.Tensor:
    """Class indices of targets: class-index targets as they are, soft targets' (N, C) most probable class."""
    return targets if targets.ndim == 1 else targets.argmax(1)


def _target_sets(splits: dict[str, FaceSet], ferplus: dict[str, FerPlusTargets]) -> dict[str, FaceSet]:
    """The labelled face sets scored in the report, by report key: each split with FER2013's labels, and with FER+
    targets also its faces FER+ gives a target, with their FER+ majority labels (``<split>_ferplus``)."""
    sets = {}
    for split, faces in splits.items():
        sets[split] = faces
        if split in ferplus:
            sets[f"{split}_ferplus"] = ferplus[split].majority_faces(faces)
    return sets


def _training_set(splits: dict[str, FaceSet], ferplus: dict[str, FerPlusTargets],
                  training_splits: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and targets of the faces trained on: FER2013's labels (N,), or with FER+ targets the vote
    distributions (N, 7) of the faces FER+ gives one."""
    if ferplus:
        images = [splits[split].images[ferplus[split].keep] for split in training_splits]
        targets = [ferplus[split].distributions[ferplus[split].keep] for split in training_splits]
    else:
        images = [splits[split].images for split in training_splits]
        targets = [splits[split].labels for split in training_splits]
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(targets))


def _train_epoch(network: nn.Module, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                 loss_fn: nn.Module, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator,
                 args: argparse.Namespace, mean: float, std: float, description: str,
                 average: AveragedModel | None, teacher: TeacherEnsemble | None) -> dict[str, float]:
    """One pass over the shuffled training images (updating the weight average after each step, if any) with their
    ``targets``, class indices (N,) or soft targets (N, C); returns mean loss and accuracy on the augmented batches
    (against the most probable class of soft targets)."""
    network.train()
    order = torch.randperm(len(images), generator=generator)
    batches = max(1, len(order) // args.batch_size)  # the last partial batch is dropped (BatchNorm needs a few samples)
    augmentation = scaled_augmentation(args.augment_strength, args.erase_probability)
    loss_sum, correct, seen = 0.0, 0, 0
    with tqdm(total=batches, desc=description, unit="batch", mininterval=10.0, file=sys.stderr) as progress:
        for batch_index in range(batches):
            chosen = order[batch_index * args.batch_size:(batch_index + 1) * args.batch_size]
            inputs = ((augmentation(images[chosen], generator) - mean) / std).unsqueeze(1).to(args.device)
            batch_targets = targets[chosen].to(args.device)
            with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16):
                logits = network(inputs)
                loss = loss_fn(logits.float(), batch_targets)
                if teacher is not None:
                    with torch.no_grad():
                        teacher_logits = teacher(inputs)
                        if args.teacher_flip:
                            teacher_logits = (teacher_logits + teacher(inputs.flip(-1))) / 2
                    loss = ((1.0 - args.distill_weight) * loss
                            + args.distill_weight * distillation_loss(logits.float(), teacher_logits,
                                                                      args.distill_temperature))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if average is not None:
                average.update_parameters(network)
            loss_sum += float(loss.detach()) * len(chosen)
            correct += int((logits.argmax(1) == _hard_labels(batch_targets)).sum())
            seen += len(chosen)
            progress.update()
            progress.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    return {"loss": loss_sum / seen, "accuracy": correct / seen}


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target term: KL(teacher || student) of the temperature-softened predictions, times
    temperature squared so its gradient keeps the scale of the hard-label loss."""
    return F.kl_div(F.log_softmax(student_logits / temperature, 1), F.log_softmax(teacher_logits / temperature, 1),
                    reduction="batchmean", log_target=True) * temperature ** 2


def _final_report(best_path: Path, scored: dict[str, FaceSet]) -> dict[str, Any]:
    """Metrics of the selected model on each labelled face set of ``scored``, without and with flip TTA."""
    network, spec = load_model(best_path)
    report: dict[str, Any] = {}
    for name, faces in scored.items():
        for tta in (False, True):
            probabilities = predict_probabilities(network_probabilities(network, spec.mean, spec.std), faces.images,
                                                  tta=tta)
            report[f"{name}_tta" if tta else name] = probability_metrics(faces.labels, probabilities, spec.labels)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    config = training_config(args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    scored_splits = ("val", "test") if args.score_test else ("val",)
    try:
        splits = {split: load_npz(args.data, split) for split in ("train", *scored_splits)}
        ferplus = ({} if args.labels == "fer2013" else
                   {split: load_ferplus(args.ferplus, args.data, split) for split in splits})
    except DatasetError as error:
        raise SystemExit(str(error)) from error
    _check_classes(splits["train"].classes, args.data)
    training_splits = ("train", "val") if args.train_on_val else ("train",)
    train_images, train_targets = _training_set(splits, ferplus, training_splits)
    scored = _target_sets({split: splits[split] for split in scored_splits}, ferplus)
    metric = SELECTION_METRIC[args.labels]
    selected_by = "last epoch (val is trained on)" if args.train_on_val else VAL_METRICS[metric]
    val_sets = {"val_accuracy": scored["val"]}  # FER2013 labels, with either --labels
    if ferplus:
        val_sets = {SELECTION_METRIC["ferplus"]: scored["val_ferplus"], **val_sets}
    targets_record = ({"labels": "fer2013"} if not ferplus else
                      {"labels": "ferplus", "ferplus_file": args.ferplus.name, "rules": FERPLUS_RULES,
                       "train_faces": len(train_images), "val_faces": len(scored["val_ferplus"])})
    mean, std = pixel_statistics(splits["train"].images)  # the train split's always, as --init and --teacher use

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)  # shuffling, augmentation; the global RNG drives dropout
    kwargs = {"num_classes": len(EMOTIONS), "in_channels": 1, "widths": list(args.widths),
              "blocks": list(args.blocks), "dropout": args.dropout}
    network = build_network(ARCHITECTURE, **kwargs)
    lineage = {} if args.init is None else {"initialised_from": _load_initial_weights(network, kwargs, args.init)}
    network.to(args.device)
    teacher = None
    if args.teacher is not None:
        teacher, lineage["distilled_from"] = _load_teachers(args.teacher, mean, std)
        teacher.to(args.device)
    optimizer = torch.optim.SGD(network.parameters(), lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay, nesterov=True)
    steps_per_epoch = max(1, len(train_images) // args.batch_size)
    warmup_steps = round(args.warmup_epochs * steps_per_epoch)
    schedule = warmup_constant(warmup_steps) if args.swa else warmup_cosine(args.epochs * steps_per_epoch, warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    average = None
    if args.ema_decay > 0:
        average = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True)
    elif args.swa:
        average = AveragedModel(network)
    selected = network if average is None else average.module  # the weights that are validated and saved
    weights = class_weights(_hard_labels(train_targets).numpy(), len(EMOTIONS), args.class_weight_power)
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=args.label_smoothing).to(args.device)

    start_epoch, best, history, elapsed = 1, {"epoch": 0, metric: -1.0}, [], 0.0
    if args.resume:
        state = torch.load(out / RESUME_FILE, map_location="cpu", weights_only=True)
        resumed = {**BEFORE_LABELS, **state["config"]}
        if resumed["labels"] != args.labels:
            raise SystemExit(f"--resume: {out / RESUME_FILE} was trained with --labels {resumed['labels']} and cannot "
                             f"continue with --labels {args.labels} (other targets, another val metric)")
        changed = {key: (resumed.get(key), value) for key, value in config.items() if resumed.get(key) != value}
        if changed:
            raise SystemExit(f"--resume: arguments differ from the checkpointed run (old, new): {changed}")
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if average is not None:
            average.load_state_dict(state["average"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and args.device == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"])
        generator.set_state(state["augment_rng"])
        start_epoch, best, history, elapsed = state["epoch"] + 1, state["best"], state["history"], state["elapsed_s"]
        print(f"resuming at epoch {start_epoch}/{args.epochs} (best {VAL_METRICS[metric]} {best[metric]:.4f} "
              f"at epoch {best['epoch']})", flush=True)

    spec = ModelSpec(architecture=ARCHITECTURE, kwargs=kwargs, labels=EMOTIONS, input_size=INPUT_SIZE,
                     color="gray", mean=mean, std=std, training={})
    run_epochs = 0
    for epoch in range(start_epoch, args.epochs + 1):
        began = time.monotonic()
        stats = _train_epoch(network, optimizer, scheduler, loss_fn, train_images, train_targets, generator, args, mean,
                             std, f"epoch {epoch}/{args.epochs}", None if args.swa else average, teacher)
        if args.swa:
            average.update_parameters(network)
            recompute_batch_norm(average.module, train_images, mean, std)
        scores = {name: network_accuracy(selected, mean, std, faces) for name, faces in val_sets.items()}
        if args.train_on_val or scores[metric] > best[metric]:
            best = {"epoch": epoch, **scores}
            training = {"dataset": "FER2013", "data_file": args.data.name, "targets": targets_record,
                        "train_split": "+".join(training_splits), "selected_by": selected_by, "epoch": epoch,
                        **scores, "seed": args.seed, "config": config, **lineage}
            save_model(out / BEST_FILE, selected, ModelSpec(**{**spec.__dict__, "training": training}))
        elapsed += time.monotonic() - began
        history.append({"epoch": epoch, "lr": scheduler.get_last_lr()[0], "train_loss": stats["loss"],
                        "train_accuracy": stats["accuracy"], **scores})
        atomic_save({"config": config, "epoch": epoch, "model": network.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "torch_rng": torch.get_rng_state(), "augment_rng": generator.get_state(),
                     **({"cuda_rng": torch.cuda.get_rng_state()} if args.device == "cuda" else {}),
                     "best": best, "history": history, "elapsed_s": elapsed,
                     **({} if average is None else {"average": average.state_dict()})}, out / RESUME_FILE)
        remaining = (args.epochs - epoch) * elapsed / epoch
        val = ", ".join(f"{VAL_METRICS[name].replace('accuracy', 'acc')} {value:.4f}"
                        + (" (trained on)" if args.train_on_val else "") for name, value in scores.items())
        held_out = "" if args.train_on_val else f" (best {best[metric]:.4f} @ {best['epoch']})"
        print(f"epoch {epoch}/{args.epochs}: train loss {stats['loss']:.4f} acc {stats['accuracy']:.4f}, "
              f"{val}{held_out}, "
              f"elapsed {elapsed / 60:.1f} min, ETA {remaining / 60:.1f} min", flush=True)
        run_epochs += 1
        if args.stop_after and run_epochs >= args.stop_after and epoch < args.epochs:
            print(f"stopping after {run_epochs} epochs; continue with --resume", flush=True)
            return 0

    report = {"config": config, "targets": targets_record, "training_splits": list(training_splits),
              "selected_by": selected_by, "best_epoch": best["epoch"],
              "epochs": args.epochs, "train_time_s": elapsed,
              "hardware": {"machine": platform.machine(), "processor": cpu_description(),
                           "torch_threads": args.threads, "torch": torch.__version__, "device": args.device,
                           **({"gpu": torch.cuda.get_device_name()} if args.device == "cuda" else {})},
              **_final_report(out / BEST_FILE, scored), "history": history}
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2))
    for key in (name for scored_set in scored for name in (scored_set, f"{scored_set}_tta")):
        trained_on = " (trained on)" if key.split("_")[0] in training_splits else ""
        print(f"{key}: accuracy {report[key]['accuracy']:.4f}, macro-F1 {report[key]['macro_f1']:.4f}{trained_on}",
              flush=True)
    print(f"report: {out / REPORT_FILE}; best model: {out / BEST_FILE}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
