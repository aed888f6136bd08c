"""One set of parameter rules for the live nodes and fer-analyze: the same face_detection.yaml gives the same
front-end settings in both, bad values replaced by their defaults with the reason."""
from __future__ import annotations

import yaml
from rclpy.parameter import Parameter

from fer_perception.face.parameters import FRONT_END_PARAMS
from fer_perception.nodes.face_detection_node import FaceDetectionNode
from fer_perception.offline.analysis import front_end_config
from fer_perception.parameter_spec import Param, checked_values

BAD_VALUES = {"max_faces": 50, "crop_size": "big", "detector": "nonexistent", "min_hits": 2}


def test_checked_values_refuse_wrong_types_and_ranges_with_the_reason():
    params = [Param("rate", 10.0, "Hz", min=0.0, max=240.0), Param("loop", False, "loop"),
              Param("mode", "a", "mode", choices=("a", "b"))]
    warnings: list[str] = []
    values = checked_values(params, {"rate": 30, "loop": "yes", "mode": "c"}, warnings.append)
    assert values == {"rate": 30.0, "loop": False, "mode": "a"} and isinstance(values["rate"], float)
    assert len(warnings) == 2 and "loop='yes' is not a bool" in warnings[0] and "mode='c'" in warnings[1]
    assert checked_values(params, {"rate": 500.0}, warnings.append)["rate"] == 10.0
    assert "outside [0.0, 240.0]" in warnings[-1]


def test_fer_analyze_and_the_face_node_read_the_same_file_the_same_way(tmp_path, ros_context):
    config = tmp_path / "face_detection.yaml"
    config.write_text(yaml.safe_dump({"/**": {"ros__parameters": BAD_VALUES}}))
    warnings: list[str] = []
    offline = front_end_config(config, deterministic_ids=False, warn=warnings.append)
    assert (offline.max_faces, offline.crop_size, offline.detector, offline.min_hits) == (
        5, 112, "mediapipe_full_range", 2)
    assert len(warnings) == 3 and all(str(config) in w for w in warnings)
    node = FaceDetectionNode(context=ros_context, parameter_overrides=[
        Parameter(name, value=value) for name, value in BAD_VALUES.items()])
    try:
        node.trigger_configure()
        live = node.front_end_config
    finally:
        node.destroy_node()
    assert {p.name: getattr(live, p.name) for p in FRONT_END_PARAMS} == \
        {p.name: getattr(offline, p.name) for p in FRONT_END_PARAMS}
