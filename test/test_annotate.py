"""The annotated frames of a group shot: AU panels beside or below each face, never over another face, with text
readable at 640 x 480 and larger at 1080p."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from conftest import media_path
from fer_perception.annotate import LABEL_COLOUR, MIN_TEXT_PX, Placement, draw_faces, letterbox
from fer_perception.expression_pipeline import FaceExpression, pipeline_from_config
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig
from fer_perception.types import TrackedFace


def group_shot(width: int, height: int) -> tuple[np.ndarray, list[TrackedFace], dict[str, FaceExpression]]:
    """The five people of the group photo fitted into ``width`` x ``height``, with their faces and expressions
    as the face front end and the expression pipeline give them."""
    image = letterbox(cv2.imread(str(media_path("multi_face.jpg"))), width, height)
    front_end = FaceFrontEnd(FaceFrontEndConfig(deterministic_ids=True))
    pipeline = pipeline_from_config(None)
    try:
        for index in range(front_end.config.min_hits):
            faces = front_end.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), index * 33_000_000)
            result = pipeline.process(faces)
    finally:
        front_end.close()
    assert len(faces.faces) == 5, f"expected the 5 faces of the group photo, found {len(faces.faces)}"
    return image, faces.faces, {expression.face_id: expression for expression in result.expressions}


@pytest.fixture(scope="module", params=[(640, 480), (1920, 1080)], ids=["640x480", "1080p"])
def annotated(request):
    image, faces, expressions = group_shot(*request.param)
    drawn = image.copy()
    placements = draw_faces(drawn, faces, expressions)
    return image, drawn, faces, expressions, placements


def label_height(image: np.ndarray, placement: Placement) -> int:
    """Height in pixels of the first AU label as drawn: the run of rows with label-coloured pixels at the top of
    the panel's label column."""
    panel = placement.panel
    column = image[panel.y0:panel.y1, panel.x0:panel.x0 + 2 * placement.au_text_height]
    lit = (column.min(axis=2) > min(LABEL_COLOUR) // 2).any(axis=1)
    first = int(np.argmax(lit))
    return int(np.argmin(lit[first:]))


def test_au_panels_do_not_cover_another_face_or_panel(annotated):
    _, _, faces, expressions, placements = annotated
    boxes = [placement.box for placement in placements]
    assert all(placement.panel is not None for placement in placements), "every face of the photo has room"
    for index, placement in enumerate(placements):
        panel = placement.panel
        for other, box in enumerate(boxes):
            assert not panel.overlaps(box), f"panel of {faces[index].track_id} covers {faces[other].track_id}"
        for other in placements[:index] + placements[index + 1:]:
            assert not panel.overlaps(other.panel) and not panel.overlaps(other.caption)
        expression = expressions[faces[index].track_id]
        estimated = np.flatnonzero(expression.aus.estimated)
        assert set(placement.au_rows) <= set(estimated) and placement.au_rows
        hidden = sorted(set(estimated) - set(placement.au_rows))
        if hidden:  # the compact form keeps the strongest
            shown = expression.au_smoothed[list(placement.au_rows)]
            assert shown.min() >= expression.au_smoothed[hidden].max()


def test_nothing_is_drawn_over_another_face(annotated):
    image, _, faces, expressions, placements = annotated
    drawn = image.copy()
    draw_faces(drawn, [replace(face, landmarks=None) for face in faces], expressions)
    margin = max(2, round(min(image.shape[:2]) / 360)) + 1  # the box's own outline
    for face, placement in zip(faces, placements):
        box = placement.box
        inside = (slice(box.y0 + margin, box.y1 - margin), slice(box.x0 + margin, box.x1 - margin))
        assert np.array_equal(drawn[inside], image[inside]), f"something was drawn over {face.track_id}"


def test_label_text_is_readable_and_grows_with_the_frame(annotated):
    image, drawn, _, _, placements = annotated
    heights = [label_height(drawn, placement) for placement in placements]
    least = MIN_TEXT_PX if image.shape[0] == 480 else 16
    assert min(heights) >= least, f"AU labels {heights} px tall in a {image.shape[1]}x{image.shape[0]} frame"
    assert all(placement.caption_height >= least + 2 for placement in placements)
