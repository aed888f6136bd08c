"""The face front end's tunable settings as parameters: one list for face_detection_node and fer-analyze.

Both read ``config/face_detection.yaml``; with one list of names, defaults and
ranges they refuse the same values for the same reasons (see
:mod:`fer_perception.parameter_spec`).
"""
from __future__ import annotations

from fer_perception.face.detector import detector_names
from fer_perception.face.front_end import FaceFrontEndConfig
from fer_perception.parameter_spec import Param

DEFAULTS = FaceFrontEndConfig()

FRONT_END_PARAMS = [
    Param("detector", DEFAULTS.detector, "Face detector backend.", choices=detector_names()),
    Param("max_faces", DEFAULTS.max_faces, "Most faces tracked at once.", min=1, max=20),
    Param("min_detection_confidence", DEFAULTS.min_detection_confidence,
          "Detector score below which a face is ignored.", min=0.0, max=1.0),
    Param("min_mesh_confidence", DEFAULTS.min_mesh_confidence,
          "Face mesh confidence below which a fit is rejected.", min=0.0, max=1.0),
    Param("min_hits", DEFAULTS.min_hits, "Frames a new face must be seen before it is reported.", min=1, max=100),
    Param("max_misses", DEFAULTS.max_misses, "Frames a face may go unseen before its track is lost.",
          min=0, max=1000),
    Param("detect_interval", DEFAULTS.detect_interval,
          "Run the full-frame detector at least every this many frames.", min=1, max=1000),
    Param("crop_size", DEFAULTS.crop_size, "Side of the aligned face crops in pixels.", min=16, max=1024),
    Param("crop_border", DEFAULTS.crop_border, "Fill of crops reaching past the image border.",
          choices=("constant", "replicate")),
    Param("deterministic_ids", DEFAULTS.deterministic_ids, "Ids f0, f1, ... in order of appearance "
          "(tests, replay), without the run tag that keeps live ids unique across restarts (f0-k7q)."),
]
