"""fer-render: draw existing results (a ``frames.csv``) onto their input, without analysing it again.

The playback tool: after editing or filtering ``frames.csv``, render it again
onto the video, image folder or bag it came from. Rows are matched to frames
by the ``frame`` column. The video is written whole or not at all: an input
that cannot be read to its end, a CSV that is not a ``frames.csv`` or Ctrl-C
leaves no video (and an earlier one at ``--out`` as it was).

Exit status: 0 the video written, 1 the input or the CSV could not be read
(one line says which and why), 2 bad arguments (an ``--out`` that is a folder
or cannot be written), 130 interrupted by Ctrl-C.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_perception.offline.analysis import node_parameters
from fer_perception.offline.analyze_cli import EXIT_INTERRUPTED, EXIT_UNFINISHED, positive
from fer_perception.offline.bags import BagError
from fer_perception.offline.inputs import AnalysisInput, InputError
from fer_perception.offline.render import RENDER_SUFFIXES, output_problem, read_rows, render_video
from fer_perception.paths import config_path
from fer_perception.video_source import SourceError


def main(argv: list[str] | None = None) -> int:
    camera = node_parameters(config_path("camera.yaml"))
    parser = argparse.ArgumentParser(prog="fer-render", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, metavar="VIDEO_OR_BAG", help="the input the CSV was made from")
    parser.add_argument("frames_csv", type=Path, metavar="FRAMES.csv", help="results of fer-analyze (or the monitor)")
    parser.add_argument("--out", type=Path, required=True, help=f"video to write ({', '.join(RENDER_SUFFIXES)})")
    parser.add_argument("--topic", default=None, help="image topic of a bag (default: the only image topic)")
    parser.add_argument("--window", type=positive, default=8.0, help="seconds shown by the timing diagrams")
    parser.add_argument("--folder-rate", type=positive, default=float(camera["folder_rate"]),
                        help="frames per second of a folder of images")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if (problem := output_problem(args.out)) is not None:
        parser.error(f"--out {args.out}: {problem}")
    try:
        source = AnalysisInput(args.input, args.topic, args.folder_rate, str(camera["frame_id"]))
        rows = read_rows(args.frames_csv)
        written = render_video(source.whole_frames(), rows, args.out, source.nominal_rate(), args.window,
                               source.frame_count(), args.quiet)
    except (InputError, BagError, SourceError, OSError) as error:
        print(f"fer-render: {error}", file=sys.stderr)
        return EXIT_UNFINISHED
    except KeyboardInterrupt:
        print(f"fer-render: interrupted (Ctrl-C); {args.out} not written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(f"wrote {written} frames to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
