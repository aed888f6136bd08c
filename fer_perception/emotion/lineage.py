"""Storing a model's training lineage once per ancestor.

A model file's training record nests its ancestors' records
(``initialised_from``, ``distilled_from``, ``souped_from``). A fine-tune that
starts from and distils from one model holds that model's record twice, and a
soup of such fine-tunes holds it once per ingredient, so stored naively the
record doubles or worse at every stage (a stage-5 soup: 1.6 MB of metadata).
On disk each repeated ancestor record after its first appearance is a
reference, ``{"same_as": "<path of the first>"}``; in memory the record is
whole again (repeats share one object).
"""
from __future__ import annotations

import json
from typing import Any

LINEAGE_KEYS = frozenset({"initialised_from", "distilled_from", "souped_from"})
"""Keys under which a training record holds its ancestors' records."""
REFERENCE = "same_as"


def compact_lineage(training: dict[str, Any]) -> dict[str, Any]:
    """``training`` with each ancestor record that appeared before (depth-first) replaced by a reference to it."""
    first_seen: dict[str, str] = {}

    def walk(value: Any, where: str, in_lineage: bool) -> Any:
        if isinstance(value, dict):
            if in_lineage:
                content = json.dumps(value, sort_keys=True, default=str)
                if content in first_seen:
                    return {REFERENCE: first_seen[content]}
                first_seen[content] = where
            return {key: walk(item, f"{where}/{key}", in_lineage or key in LINEAGE_KEYS)
                    for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, f"{where}/{index}", in_lineage) for index, item in enumerate(value)]
        return value

    return walk(training, "", False)


def expand_lineage(training: dict[str, Any]) -> dict[str, Any]:
    """The whole record of a :func:`compact_lineage` result; ``KeyError`` for a reference to nothing before it."""
    expanded: dict[str, Any] = {}

    def walk(value: Any, where: str) -> Any:
        if isinstance(value, dict):
            if set(value) == {REFERENCE}:
                return expanded[value[REFERENCE]]
            whole: dict[str, Any] = {}
            expanded[where] = whole
            whole.update({key: walk(item, f"{where}/{key}") for key, item in value.items()})
            return whole
        if isinstance(value, list):
            return [walk(item, f"{where}/{index}") for index, item in enumerate(value)]
        return value

    return walk(training, "")
