"""The README's reference is kept in step with the code: every parameter and graph argument is listed."""
from __future__ import annotations

from pathlib import Path

import pytest

from fer_perception.graph import load_graph
from fer_perception.nodes import (bag_record, bag_replay, camera_node, expression_node, face_detection_node,
                                  monitor_node)

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


SECTIONS = {bag_replay: "fer-replay (bag_replay)", bag_record: "fer-record (bag_record)"}


@pytest.mark.parametrize("module", [camera_node, face_detection_node, expression_node, monitor_node, bag_replay,
                                    bag_record])
def test_every_parameter_is_in_the_readme(module):
    params = getattr(module, "PARAMS", None) or module.FRONT_END_PARAMS + module.NODE_PARAMS
    title = SECTIONS.get(module, module.__name__.rsplit(".", 1)[1])
    section = README.split(f"### {title}")[1].split("###")[0]
    for param in params:
        assert f"`{param.name}`" in section, f"{param.name} missing from the README section of {module.__name__}"


def test_every_graph_argument_and_topic_is_in_the_readme():
    graph = load_graph()
    for name in graph.arguments:
        assert f"| `{name}` |" in README
    for spec in graph.resolve({"monitor": "true"}):
        for _, topic in spec.remappings:
            assert topic in README, f"topic {topic} of {spec.name} missing from the README"
