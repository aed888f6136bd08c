"""fer-analyze: analyse videos, images, image folders and rosbag2 bags offline, one output folder per input.

Every input runs through the live graph's core (:class:`Analyzer`) with the
timestamps of the input. One input writes into ``--out`` itself; several
inputs (or a folder of videos or bags) write one folder per input under
``--out`` plus ``batch_summary.json``. Inputs whose outputs are complete are
skipped unless ``--force``; an input that fails (corrupt video, truncated
bag, no image topic) or whose results are incomplete (fewer frames than it
declares, stamps going back) is reported in one line and the batch goes on.
``--render`` and ``--compile`` draw the results onto the input in a second pass
over it: the whole annotated video, and a compilation of the events (each
event's clip after a title card). The first Ctrl-C (or SIGTERM) stops every
analysis at its next frame and writes what was analysed. ``--neutral
START:END`` names a stretch of each input in which the faces are at rest: a
first pass over it sets each face's neutral face before the analysis, instead
of learning it online.

Exit status: 0 every input complete (or skipped as complete), 1 some input
failed or is incomplete, 2 bad arguments or configuration (nothing
analysed), 130 interrupted by Ctrl-C (SIGINT), 143 by SIGTERM.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, fields, replace
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path

from tqdm import tqdm

from fer_perception.emotion.checkpoint import ModelLoadError
from fer_perception.emotion.loading import UnknownEmotionModelError, emotion_config, model_path
from fer_perception.graph import graph_topics
from fer_perception.au.estimators import au_estimator_names
from fer_perception.emotion.classifier import BACKENDS
from fer_perception.expression_pipeline import EMOTION_SMOOTHING_METHODS
from fer_perception.face.detector import detector_names
from fer_perception.offline.analysis import AnalysisChoices, Analyzer, node_parameters
from fer_perception.offline.bags import BagError, written_bag
from fer_perception.offline.compilation import CompilationSettings, EventCompiler, read_events
from fer_perception.offline.inputs import AnalysisInput, InputError, InputFrame, expand_inputs
from fer_perception.offline.render import read_rows, render_video
from fer_perception.offline.results import EVENTS_JSON, FRAMES_FILE, AnalysisWriter, is_complete
from fer_perception.paths import config_path
from fer_perception.video_source import SourceError

BATCH_SUMMARY = "batch_summary.json"
DEFAULT_RENDER, DEFAULT_BAG, DEFAULT_COMPILE = "annotated.mp4", "results.mcap", "events.mp4"
EXIT_UNFINISHED, EXIT_CONFIGURATION = 1, 2  # 2 is also argparse's for bad arguments
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
# The exit status after a stop signal is the shell's for a process that signal killed: 130 and 143.
EXIT_INTERRUPTED, EXIT_TERMINATED = (128 + signum for signum in STOP_SIGNALS)
# An input's status in the batch: the first two count as success, the next two exit 1, the last two 130 (143).
STATUSES = ("done", "skipped", "incomplete", "failed", "interrupted", "not_started")


class StopFlag:
    """The stop signals received (SIGINT, SIGTERM): the first makes every analysis stop at its next frame, the
    second also stops the render of what was analysed. Shared memory, so worker processes see it too."""

    def __init__(self, context: BaseContext):
        self._state = context.RawArray("i", 2)  # signals received, the first one's number

    def set(self, signum: int) -> None:
        self._state[1] = self._state[1] or signum
        self._state[0] += 1

    @property
    def count(self) -> int:
        return self._state[0]

    def is_set(self) -> bool:
        return self.count > 0

    @property
    def cause(self) -> str:
        """The first signal, as the reasons name it ("Ctrl-C", "SIGTERM")."""
        return STOP_SIGNALS.get(self.signum, "stopped")

    @property
    def signum(self) -> int:
        """The first stop signal's number (0 before any)."""
        return self._state[1]


# Worker processes get the main process's flag from _start_worker; _run makes a fresh one for each run.
_stop = StopFlag(get_context("spawn"))


@dataclass(frozen=True)
class Job:
    """One input to analyse and where its results go."""

    input_path: Path
    out_dir: Path
    topic: str | None
    folder_rate: float
    frame_id: str
    render: Path | None
    window_s: float
    bag_out: Path | None
    bag_images: bool
    quiet: bool
    neutral: tuple[float, float] | None  # seconds from the first frame in which the faces are neutral
    choices: AnalysisChoices = AnalysisChoices()  # detector, emotion model, ... instead of the configured ones
    compile_to: Path | None = None  # the event compilation
    compilation: CompilationSettings | None = None  # its settings, when compile_to is set
    progress_position: int = 0


class UntilStopped:
    """An input's frames, ending early once a stop signal asked every analysis to stop; :attr:`stopped` says if
    they did.

    Stopping where frames enter the analysis, rather than where results leave it, lets the frames already in
    the stages finish, so every frame that entered is written and the episodes close at the last one.
    """

    def __init__(self, frames: Iterator[InputFrame], limit: int | None = None, signals_allowed: int = 0):
        """``limit``: the first frames only; ``signals_allowed``: stop signals that do not stop these frames (both
        for the render of the frames analysed before the first signal)."""
        self._frames = frames
        self._limit = limit
        self._signals_allowed = signals_allowed
        self.stopped = False

    def __iter__(self) -> Iterator[InputFrame]:
        with closing(self._frames):  # releases the video or bag now, not when garbage-collected
            for count, frame in enumerate(self._frames):
                if count == self._limit:
                    return
                if _stop.count > self._signals_allowed:
                    self.stopped = True
                    return
                yield frame


def analyse_input(job: Job) -> dict[str, object]:
    """Analyse one input into ``job.out_dir``; returns its batch record (never raises for a bad input).

    ``failed`` (with the ``error``): nothing analysed; ``incomplete`` and ``interrupted`` (with the ``reason``):
    results written for part of the input, or for an input whose stamps went back.
    """
    record: dict[str, object] = {"input": str(job.input_path)}
    if _stop.is_set():
        return {**record, "status": "not_started", "reason": "not started (interrupted)"}
    began = time.monotonic()
    try:
        source = AnalysisInput(job.input_path, job.topic, job.folder_rate, job.frame_id)
        summary = _analyse(source, job)
    except (InputError, BagError, SourceError, OSError, ValueError) as error:
        return {**record, "status": "failed", "error": str(error), "seconds": round(time.monotonic() - began, 3)}
    if summary["complete"]:
        record["status"] = "done"
    elif summary["interrupted"]:
        record.update(status="interrupted", reason=summary["reason"])
    elif summary["frames"]:
        record.update(status="incomplete", reason=summary["reason"])
    else:
        record.update(status="failed", error=summary["reason"])
    return {**record, "out_dir": str(job.out_dir),
            **{k: summary[k] for k in ("frames", "face_rows", "events", "analysis_fps", "realtime_factor")},
            **{k: summary[k] for k in ("render_seconds", "compilation") if k in summary},
            "seconds": round(time.monotonic() - began, 3)}


def _analyse(source: AnalysisInput, job: Job) -> dict[str, object]:
    """Analyse ``source`` and write its results, ending with the summary: complete, or saying why not."""
    total = source.frame_count()
    analyzer = Analyzer.from_config(warn=lambda text: logging.getLogger("fer-analyze").warning(text),
                                    still_images=source.kind == "images", choices=job.choices)
    writer = AnalysisWriter(job.out_dir, source.path)
    bag = None
    if job.bag_out is not None:
        from fer_perception.offline.bag_out import ResultBagWriter  # needs rclpy and the built fer_msgs

        image_topic = source.topic if source.kind == "bag" else graph_topics("face_detection")["image"]
        _clear_previous_bag(job)
        bag = ResultBagWriter(job.bag_out, image_topic if job.bag_images else None)
    bar = tqdm(total=total, unit="frame", desc=source.name, disable=job.quiet, position=job.progress_position,
               leave=not job.quiet, dynamic_ncols=True)
    began = time.monotonic()
    frames = UntilStopped(source.frames())
    try:
        if job.neutral is not None:
            _set_neutral(analyzer, source, *job.neutral)
        for analysed in analyzer.analyse(frames):
            writer.add(analysed)
            if bag is not None:
                bag.add(analysed)
            bar.update()
        ending = analyzer.finish()
    except BaseException:
        writer.abort()
        if bag is not None:
            bag.close([])
        raise
    finally:
        bar.close()
        analyzer.close()
    writer.finish(ending)
    if bag is not None:
        bag.close(ending)
    seconds = time.monotonic() - began
    if frames.stopped:
        reason = f"interrupted ({_stop.cause}) after {writer.frames} of {total if total is not None else '?'} frames"
    else:
        reason = "; ".join(filter(None, (source.shortfall(writer.frames), writer.stamps_reason()))) or None
    extra: dict[str, object] = {
        "interrupted": frames.stopped, "frames_expected": source.declared_frames(),
        "analysis_seconds": round(seconds, 3), "analysis_fps": round(writer.frames / seconds, 1) if seconds else 0.0,
        "realtime_factor": round(writer.media_seconds / seconds, 2) if seconds and writer.media_seconds else None,
        "neutral_range_s": list(job.neutral) if job.neutral is not None else None, "choices": job.choices.made()}
    if bag is not None:
        extra["bag_out"] = {"path": str(bag.path), "messages": bag.counts}
    if job.render is not None or job.compile_to is not None:
        drawn, stopped_drawing = _draw(source, job, writer.frames if frames.stopped else None)
        extra.update(drawn)
        if stopped_drawing:
            extra["interrupted"] = True
            reason = (f"{reason}; render stopped part-way" if frames.stopped
                      else f"interrupted ({_stop.cause}) while rendering")
    return writer.write_summary(reason, extra)


def _set_neutral(analyzer: Analyzer, source: AnalysisInput, start_s: float, end_s: float) -> None:
    """Give each face seen from ``start_s`` to ``end_s`` that stretch as its neutral face; warn if none is seen
    (the faces then calibrate online, as without ``--neutral``)."""
    frames = UntilStopped(source.frames())
    meshes = analyzer.neutral_meshes(frames, start_s, end_s)
    if meshes:
        analyzer.set_neutral(meshes)
    elif not frames.stopped:
        logging.getLogger("fer-analyze").warning(
            f"warning: {source.path}: no face seen from {start_s:g} to {end_s:g} s (--neutral); "
            "calibrating the faces online instead")


def _clear_previous_bag(job: Job) -> None:
    """Remove the result bag of an earlier analysis in this input's output folder; refuse to touch others."""
    folder = written_bag(job.bag_out)
    if not folder.exists():
        return
    if folder.resolve().parent != job.out_dir.resolve():
        raise ValueError(f"{folder} exists already; remove it or choose another --bag-out")
    shutil.rmtree(folder)


def _draw(source: AnalysisInput, job: Job, analysed: int | None) -> tuple[dict[str, object], bool]:
    """The second pass over the input: the annotated video and the compilation, from the same frames. Returns
    their summary entries, and whether a stop signal cut the pass short.

    ``analysed``: after an interruption, the frames analysed (only those are drawn, unless a second signal stops
    that too); None after a whole analysis.
    """
    began = time.monotonic()
    rows = read_rows(job.out_dir / FRAMES_FILE)
    compiler = (EventCompiler(read_events(job.out_dir / EVENTS_JSON), rows, job.compile_to, source.nominal_rate(),
                              job.compilation, source.path.name, job.window_s)
                if job.compile_to is not None else None)
    limit = analysed
    if job.render is None and not compiler.needs_frames:
        limit = 1 if analysed is None else min(analysed, 1)  # a compilation without events: its size only
    frames = UntilStopped(source.frames(), limit, signals_allowed=0 if analysed is None else 1)
    stream = compiler.through(frames) if compiler is not None else frames
    try:
        if job.render is not None:
            render_video(stream, rows, job.render, source.nominal_rate(), job.window_s, source.frame_count(),
                         job.quiet)
        else:
            for _ in tqdm(stream, total=limit or source.frame_count(), unit="frame",
                          desc=f"compile {job.compile_to.name}", disable=job.quiet, dynamic_ncols=True):
                pass
        if compiler is not None:
            compiler.finish()
    finally:
        if compiler is not None:
            compiler.close()
    entries: dict[str, object] = {"render_seconds": round(time.monotonic() - began, 3)}
    if job.render is not None:
        entries["render"] = str(job.render)
    if compiler is not None:
        entries["compilation"] = {"path": str(job.compile_to), **asdict(compiler.compilation)}
    return entries, frames.stopped


def output_dirs(inputs: list[Path], out: Path, batch: bool) -> list[Path]:
    """``out`` for a single input; otherwise one folder per input, named after it (made unique)."""
    if not batch:
        return [out]
    used: dict[str, int] = {}
    dirs = []
    for path in inputs:
        name = path.stem if path.is_file() else path.name
        used[name] = used.get(name, 0) + 1
        dirs.append(out / (name if used[name] == 1 else f"{name}_{used[name]}"))
    return dirs


def _placed(option: str | None, out_dir: Path, batch: bool) -> Path | None:
    """Where ``--render``/``--bag-out`` write for one input: a bare name goes into its output folder."""
    if option is None:
        return None
    path = Path(option)
    return out_dir / path.name if batch or path.parent == Path(".") else path


def neutral_range(text: str) -> tuple[float, float]:
    """``START:END`` in seconds (``--neutral``), with 0 <= START < END."""
    try:
        start, end = (float(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not START:END in seconds (e.g. 0:1.5)") from None
    if not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= START < END (seconds from the first frame)")
    return start, end


def positive(text: str) -> float:
    """A finite number above 0 (``--window``, ``--folder-rate``): 0 or less makes no rate or window."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number above 0")
    return value


def event_kinds(text: str) -> tuple[str, ...]:
    """Comma-separated event kinds (``--compile-kinds``; :class:`CompilationSettings` checks that they exist)."""
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    if not kinds:
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more event kinds, separated by commas")
    return kinds


def at_least_one(text: str) -> int:
    """A whole number from 1 (``--jobs``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    camera = node_parameters(config_path("camera.yaml"))
    parser = argparse.ArgumentParser(prog="fer-analyze", description=__doc__.split("\n\n")[0],
                                     epilog="Columns of frames.csv: docs/offline_analysis.md.")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="video, image, folder of images, rosbag2 bag (folder or its .mcap/.db3), or a folder "
                             "of videos and bags (batch)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--topic", default=None, help="image topic of bags (default: the only image topic)")
    parser.add_argument("--render", nargs="?", const=DEFAULT_RENDER, default=None, metavar="FILE",
                        help=f"also write the annotated video with timing diagrams (default name {DEFAULT_RENDER})")
    parser.add_argument("--compile", nargs="?", const=DEFAULT_COMPILE, default=None, metavar="FILE",
                        help="also write a compilation of the events: each event's clip with some context, after "
                             f"a title card (default name {DEFAULT_COMPILE}; settings in config/offline.yaml)")
    parser.add_argument("--compile-kinds", type=event_kinds, default=None, metavar="KIND,...",
                        help="the event kinds compiled (default: offline.yaml's compilation.kinds)")
    parser.add_argument("--window", type=positive, default=8.0, help="seconds shown by the timing diagrams")
    parser.add_argument("--bag-out", nargs="?", const=DEFAULT_BAG, default=None, metavar="FILE",
                        help=f"also write the results as fer_msgs to a rosbag2 bag (default {DEFAULT_BAG}; "
                             ".mcap or .db3 storage)")
    parser.add_argument("--bag-images", action="store_true", help="put the input images into the --bag-out bag")
    parser.add_argument("--folder-rate", type=positive, default=float(camera["folder_rate"]),
                        help="frames per second assumed for a folder of images (default: camera.yaml's)")
    parser.add_argument("--frame-id", default=str(camera["frame_id"]), help="frame_id of videos and images")
    parser.add_argument("--neutral", type=neutral_range, default=None, metavar="START:END",
                        help="seconds (from each input's first frame) in which the faces are neutral: their median "
                             "face there is each face's neutral face from the start (default: learned online)")
    parser.add_argument("--emotion-model", default=None, metavar="NAME",
                        help="emotion classifier: a name of classifier.models in emotion.yaml, or a .pt file "
                             "(default: expression_node.yaml's emotion_model, else emotion.yaml's classifier.model)")
    parser.add_argument("--emotion-backend", choices=tuple(BACKENDS), default=None,
                        help="how the emotion classifier runs (default: expression_node.yaml's emotion_backend, else "
                             "emotion.yaml's classifier.backend)")
    parser.add_argument("--coarse-to-fine", action=argparse.BooleanOptionalAction, default=None,
                        help="label {neutral, happy, surprise, negative} first, then within negative (default: "
                             "emotion.yaml's coarse_to_fine)")
    parser.add_argument("--smoothing", dest="emotion_smoothing", choices=EMOTION_SMOOTHING_METHODS, default=None,
                        help="how emotion probabilities are smoothed per face (default: expression.yaml's "
                             "smoothing.emotion_method)")
    parser.add_argument("--au-estimator", choices=au_estimator_names(), default=None,
                        help="AU estimator (default: expression_node.yaml's au_estimator, else action_units.yaml's)")
    parser.add_argument("--detector", choices=detector_names(), default=None,
                        help="face detector (default: face_detection.yaml's detector)")
    parser.add_argument("--force", action="store_true", help="analyse again inputs whose outputs are complete")
    parser.add_argument("--jobs", type=at_least_one, default=1, help="inputs analysed in parallel processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or result lines")
    args = parser.parse_args(argv)
    if args.bag_images and args.bag_out is None:
        parser.error("--bag-images needs --bag-out")
    if args.compile_kinds and args.compile is None:
        parser.error("--compile-kinds needs --compile")
    try:
        args.compilation = CompilationSettings.from_config()
        if args.compile_kinds:
            args.compilation = replace(args.compilation, kinds=args.compile_kinds)
    except (OSError, KeyError, TypeError, ValueError) as error:
        parser.error(f"compilation settings (config/offline.yaml, --compile-kinds): {error}")
    # Checked before any analysis: otherwise each input failed alone and the batch summary with a traceback.
    if args.emotion_model is not None:
        try:
            model_path(emotion_config(), args.emotion_model)
        except UnknownEmotionModelError as error:
            parser.error(f"--emotion-model: {error}")
    args.choices = AnalysisChoices(**{field.name: getattr(args, field.name) for field in fields(AnalysisChoices)})
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: is a file, not a folder")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"--out {args.out}: cannot make the folder: {error.strerror}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    inputs = expand_inputs(args.inputs)
    batch = len(inputs) > 1 or len(args.inputs) > 1 or inputs != args.inputs
    jobs, records = [], []
    for path, out_dir in zip(inputs, output_dirs(inputs, args.out, batch)):
        job = Job(path, out_dir, args.topic, args.folder_rate, args.frame_id,
                  _placed(args.render, out_dir, batch), args.window, _placed(args.bag_out, out_dir, batch),
                  args.bag_images, args.quiet, args.neutral, args.choices,
                  _placed(args.compile, out_dir, batch), args.compilation)
        if not args.force and is_complete(out_dir, path, args.neutral, args.choices.made()) and _extras_present(job):
            records.append({"input": str(path), "status": "skipped", "out_dir": str(out_dir),
                            "reason": "outputs complete (use --force to redo)"})
        else:
            jobs.append(job)
    try:
        records += _run(jobs, args.jobs)
    except ModelLoadError as error:  # the configuration, not an input: nothing can be analysed
        print(f"fer-analyze: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    records.sort(key=lambda r: r["input"])
    counts = Counter(r["status"] for r in records)
    if batch:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / BATCH_SUMMARY).write_text(json.dumps(
            {"inputs": len(records), **{status: counts[status] for status in STATUSES}, "results": records},
            indent=2) + "\n")
    for record in records:
        if record["status"] in ("done", "skipped"):
            if not args.quiet:
                print(_record_line(record))
        else:
            print(f"fer-analyze: {record['input']}: {record.get('error') or record['reason']}", file=sys.stderr)
    if counts["interrupted"] or counts["not_started"]:
        return 128 + _stop.signum
    return EXIT_UNFINISHED if counts["failed"] or counts["incomplete"] else 0


def _extras_present(job: Job) -> bool:
    return ((job.render is None or job.render.is_file()) and (job.compile_to is None or job.compile_to.is_file())
            and (job.bag_out is None or (written_bag(job.bag_out) / "metadata.yaml").is_file()))


def _run(jobs: list[Job], workers: int) -> list[dict[str, object]]:
    """Analyse ``jobs`` here or in ``workers`` processes; the first stop signal stops them all at their next
    frame."""
    global _stop
    context = get_context("spawn")
    _stop = StopFlag(context)
    if workers == 1 or len(jobs) <= 1:
        with _stop_at_signals():
            return [analyse_input(job) for job in jobs]
    stop_signals = set(STOP_SIGNALS)
    with _stop_at_signals(), ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                 initializer=_start_worker, initargs=(_stop,)) as pool:
        # The pool starts its workers in submit: they inherit the stop signals blocked, through fork and exec,
        # so the Ctrl-C a terminal (or the SIGTERM a supervisor) sends to the whole process group reaches them
        # only as the stop flag, and never while they import. Blocking rather than ignoring keeps a signal sent
        # meanwhile for this process.
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        try:
            futures = [pool.submit(analyse_input, replace(job, progress_position=i % workers))
                       for i, job in enumerate(jobs)]
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
        return [future.result() for future in futures]


def _start_worker(stop: StopFlag) -> None:
    """A worker process's set-up: the main process's stop flag."""
    global _stop
    _stop = stop


@contextmanager
def _stop_at_signals() -> Iterator[None]:
    """Within the block, SIGINT (Ctrl-C) and SIGTERM set the stop flag instead of raising KeyboardInterrupt
    anywhere or killing the process.

    A KeyboardInterrupt in the main process used to leave it waiting in the pool's shutdown for each worker to
    finish its whole input, with no batch summary, and SIGTERM's default action left a result bag without its
    ``metadata.yaml``; the flag lets every analysis end at its next frame and write what it has, and the batch
    summary follow.
    """
    def interrupt(signum: int, frame: object) -> None:
        if not _stop.is_set():
            print(f"fer-analyze: interrupted ({STOP_SIGNALS[signum]}): stopping at the next frame and writing what "
                  "was analysed", file=sys.stderr)
        _stop.set(signum)

    previous = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _record_line(record: dict[str, object]) -> str:
    if record["status"] == "skipped":
        return f"skipped {record['input']}: {record['reason']}"
    line = (f"{record['input']}: {record['frames']} frames, {record['face_rows']} face rows, {record['events']} "
            f"events -> {record['out_dir']}  ({record['analysis_fps']} fps")
    if record.get("realtime_factor"):
        line += f", {record['realtime_factor']}x real time"
    if "compilation" in record:
        compiled = record["compilation"]
        line += (f"; {compiled['events']} event(s) in {compiled['clips']} clip(s) compiled" if compiled["clips"]
                 else "; no events to compile (the compilation is one card saying so)")
    if "render_seconds" in record:
        line += f"; render {record['render_seconds']} s"
    return line + ")"


if __name__ == "__main__":
    sys.exit(main())
