"""fer-render: draw existing results (a ``frames.csv``) onto their input, without analysing it again.

The playback tool: after editing or filtering ``frames.csv``, render it again
onto the video, image folder or bag it came from, or play it in a window
(``--show``) at the pace it was recorded, so that a session can be watched with
its emotion data; q or closing the window stops. Rows are matched to frames
by the ``frame`` column. The video is written whole or not at all: an input
that cannot be read to its end, a CSV that is not a ``frames.csv``, Ctrl-C or
the window closed before the end leaves no video (and an earlier one at
``--out`` as it was).

Exit status: 0 the video written (or, with ``--show`` alone, played or stopped
in the window), 1 the input or the CSV could not be read (one line says which
and why), the window closed before ``--out`` was whole, or, with ``--show``
alone, no window can open; 2 bad arguments (an ``--out`` that is a folder or
cannot be written), 130 interrupted by Ctrl-C.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from fer_perception.live_window import LiveWindow, open_window
from fer_perception.offline.analysis import node_parameters
from fer_perception.offline.analyze_cli import EXIT_INTERRUPTED, EXIT_UNFINISHED, positive
from fer_perception.offline.bags import BagError
from fer_perception.offline.inputs import AnalysisInput, InputError, InputFrame
from fer_perception.offline.render import (RENDER_SUFFIXES, TimingDiagramRenderer, output_problem, read_rows,
                                           render_video)
from fer_perception.paths import config_path
from fer_perception.video_source import SourceError


class PlaybackStopped(Exception):
    """The window was closed before the end or, ``failed``, went away with nothing else to do (it has said why)."""

    def __init__(self, message: str, failed: bool = False):
        super().__init__(message)
        self.failed = failed


class Playback:
    """Hands drawn frames to the window at the pace of their stamps, so that the session plays in real time.

    Where the window cannot be shown, the frames are only drawn (for ``--out``) or, when ``stop_on_failure``
    (``--show`` alone), :class:`PlaybackStopped` ends the playback.
    """

    def __init__(self, window: LiveWindow, stop_on_failure: bool):
        self.window = window
        self.stop_on_failure = stop_on_failure
        self.shown = 0
        self._origin: tuple[float, int] | None = None  # (monotonic time, stamp) of the first frame

    def __call__(self, frame: InputFrame, image: np.ndarray) -> None:
        if self.window.failure is not None:
            if self.stop_on_failure:
                raise PlaybackStopped(self.window.failure, failed=True)
            return
        if self._origin is None:
            self._origin = (time.monotonic(), frame.stamp_ns)
        due = self._origin[0] + (frame.stamp_ns - self._origin[1]) / 1e9
        if self.window.closed.wait(max(0.0, due - time.monotonic())):
            raise PlaybackStopped(f"stopped in the window after {self.shown} frames")
        self.window.show(image)
        self.shown += 1


def main(argv: list[str] | None = None) -> int:
    camera = node_parameters(config_path("camera.yaml"))
    parser = argparse.ArgumentParser(prog="fer-render", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, metavar="VIDEO_OR_BAG", help="the input the CSV was made from")
    parser.add_argument("frames_csv", type=Path, metavar="FRAMES.csv", help="results of fer-analyze (or the monitor)")
    parser.add_argument("--out", type=Path, default=None, help=f"video to write ({', '.join(RENDER_SUFFIXES)})")
    parser.add_argument("--show", action="store_true",
                        help="play the annotated frames in a window at the recording's pace (q or closing it stops)")
    parser.add_argument("--topic", default=None, help="image topic of a bag (default: the only image topic)")
    parser.add_argument("--window", type=positive, default=8.0, help="seconds shown by the timing diagrams")
    parser.add_argument("--folder-rate", type=positive, default=float(camera["folder_rate"]),
                        help="frames per second of a folder of images")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.out is None and not args.show:
        parser.error("give --out VIDEO, --show, or both")
    if args.out is not None and (problem := output_problem(args.out)) is not None:
        parser.error(f"--out {args.out}: {problem}")
    window: LiveWindow | None = None
    try:
        source = AnalysisInput(args.input, args.topic, args.folder_rate, str(camera["frame_id"]))
        rows = read_rows(args.frames_csv)
        playback = None
        if args.show:
            window, reason = open_window("always", lambda: None,
                                         lambda why: print(f"fer-render: {why}", file=sys.stderr))
            if reason is not None:
                print(f"fer-render: {reason}" + (f"; writing {args.out} only" if args.out else ""), file=sys.stderr)
                if args.out is None:
                    return EXIT_UNFINISHED
            else:
                playback = Playback(window, stop_on_failure=args.out is None)
        if args.out is None:
            renderer = TimingDiagramRenderer(rows, args.window)
            for frame in source.whole_frames():
                playback(frame, renderer.draw(frame))
        else:
            written = render_video(source.whole_frames(), rows, args.out, source.nominal_rate(), args.window,
                                   source.frame_count(), args.quiet, playback)
    except (InputError, BagError, SourceError, OSError) as error:
        print(f"fer-render: {error}", file=sys.stderr)
        return EXIT_UNFINISHED
    except KeyboardInterrupt:
        print("fer-render: interrupted (Ctrl-C)" + (f"; {args.out} not written" if args.out else ""),
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except PlaybackStopped as stop:
        if not stop.failed:
            print(f"fer-render: {stop}" + (f"; {args.out} not written" if args.out else ""), file=sys.stderr)
        return EXIT_UNFINISHED if args.out or stop.failed else 0
    finally:
        if window is not None:
            window.close()
    if not args.quiet:
        print(f"wrote {written} frames to {args.out}" if args.out else f"played {playback.shown} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
