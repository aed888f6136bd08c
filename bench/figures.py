"""One measured figure with its unit and goal, and summary statistics over repeated runs."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Figure:
    """A benchmark result: ``value`` is None when it could not be measured (printed as "missing")."""

    section: str
    name: str
    value: float | None
    unit: str
    goal: str = ""
    met: bool | None = None
    issue: int | None = None
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def median_p95(samples_s: list[float]) -> tuple[float, float]:
    """Median and 95th percentile of durations in seconds, returned in milliseconds."""
    values = np.asarray(samples_s) * 1000.0
    return float(np.median(values)), float(np.percentile(values, 95))
