"""Multi-face tracker: one stable id per person across frames.

Each track predicts its box with a constant-velocity model on the box centre.
Observations are matched to predictions by the Hungarian method on a cost of
(1 - IoU) plus the distance between predicted and observed eye centres (box
centres when either side lacks eyes), normalised by face size; a pair whose
IoU is under ``iou_threshold`` and whose distance is over
``max_centre_distance`` (times sqrt(frames since the track was last seen))
can never match. Observations the caller already knows the track of (a mesh
followed from the track's own last position) are applied directly and skip
matching.

Life cycle: an unmatched observation starts a tentative track; a tentative
track is confirmed, and only then given an id, after ``min_hits`` hits in a
row, and dropped silently at its first miss, so a detection that flickers for
fewer than ``min_hits`` frames never becomes a face. A confirmed track survives
up to ``max_misses`` frames in a row without a match (coasting on its
prediction) and is then reported once as lost.

Ids are short and readable: ``f0``, ``f1``, ... in order of confirmation,
followed in live use by a tag of three random characters drawn once per
tracker (``f0-k7q``). A face node that restarts (a new process, or
deactivated and activated again) starts a new tracker and counts from
``f0`` again; the tag keeps its faces apart from those of the previous run,
which the expression node may still be following (until ``track_timeout_s``)
and which a recording of both runs holds under the same topic, and from the
faces of a second face node in the same graph. ``deterministic_ids`` leaves
the tag out, for tests and offline analyses that must name faces alike on
every run.
"""
from __future__ import annotations

import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.optimize import linear_sum_assignment

from fer_perception.face.mesh_points import eye_centres
from fer_perception.types import BoundingBox

VELOCITY_SMOOTHING = 0.5
"""Weight of the newest displacement in the velocity estimate (exponential smoothing)."""
MAX_SIZE_RATIO = 2.0
"""Observation and track sizes (sqrt of area) differing by more than this factor never match."""
_FORBIDDEN = 1e6
ID_TAG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
"""Characters of the run tag: lower case and digits, without those easily misread (i, l, o, 0, 1)."""
ID_TAG_LENGTH = 3


@dataclass(frozen=True, eq=False)
class Observation:
    """One face measured in the current frame."""

    box: BoundingBox
    score: float
    landmarks: np.ndarray | None = None
    """478 x 3 mesh landmarks in pixels, when a mesh was fitted."""
    keypoints: np.ndarray | None = None
    """(6, 2) detector keypoints in pixels, when the observation came from a detector."""

    @cached_property
    def eyes(self) -> np.ndarray | None:
        """(2, 2) right then left eye centre: from the mesh, else the detector keypoints, else None."""
        if self.landmarks is not None:
            return eye_centres(self.landmarks)
        if self.keypoints is not None:
            return self.keypoints[:2]
        return None


@dataclass(eq=False)
class Track:
    """A face being followed; ``track_id`` is set once the track is confirmed."""

    key: int
    """Internal handle, unique for the tracker's lifetime, set at birth."""
    box: BoundingBox
    score: float
    eyes: np.ndarray | None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    """Box-centre displacement in pixels per frame."""
    hits: int = 1
    misses: int = 0
    track_id: str | None = None
    observation: Observation | None = None
    """What matched this track in the latest frame; None when it missed."""

    @property
    def confirmed(self) -> bool:
        return self.track_id is not None

    def predicted_shift(self) -> np.ndarray:
        """Expected centre displacement from the last measured box to the current frame."""
        return self.velocity * (self.misses + 1)

    def predicted_box(self) -> BoundingBox:
        dx, dy = self.predicted_shift()
        return BoundingBox(self.box.x + dx, self.box.y + dy, self.box.width, self.box.height)


@dataclass
class TrackerUpdate:
    """Outcome of one frame."""

    visible: list[Track]
    """Confirmed tracks matched in this frame, oldest first."""
    lost: list[Track]
    """Confirmed tracks that ended with this frame."""


class FaceTracker:
    """Associates per-frame face observations into identities."""

    def __init__(self, *, min_hits: int, max_misses: int, iou_threshold: float, max_centre_distance: float,
                 max_tracks: int, deterministic_ids: bool) -> None:
        self._min_hits = min_hits
        self._max_misses = max_misses
        self._iou_threshold = iou_threshold
        self._max_centre_distance = max_centre_distance
        self._max_tracks = max_tracks
        self._tracks: list[Track] = []
        self._next_key = 0
        self._confirmed_count = 0
        self._id_tag = "" if deterministic_ids else "-" + "".join(
            secrets.choice(ID_TAG_ALPHABET) for _ in range(ID_TAG_LENGTH))

    @property
    def tracks(self) -> list[Track]:
        """Live tracks, tentative and confirmed, oldest first."""
        return list(self._tracks)

    def can_match(self, track: Track, observation: Observation) -> bool:
        """Whether ``observation`` passes the association gate for ``track``."""
        return self._cost(track, observation) < _FORBIDDEN

    def update(self, observations: Sequence[Observation],
               assigned: Mapping[int, Observation] | None = None) -> TrackerUpdate:
        """Advance one frame.

        ``assigned`` maps track keys to observations already known to belong
        to them; ``observations`` are matched to the remaining tracks.
        """
        assigned = assigned or {}
        for track in self._tracks:
            track.observation = None
        by_key = {track.key: track for track in self._tracks}
        for key, observation in assigned.items():
            self._apply(by_key[key], observation)

        open_tracks = [track for track in self._tracks if track.key not in assigned]
        matched_tracks, matched_observations = self._associate(open_tracks, observations)
        for track_index, observation_index in zip(matched_tracks, matched_observations):
            self._apply(open_tracks[track_index], observations[observation_index])

        lost = self._age_unmatched()
        taken = set(matched_observations)
        unmatched = [obs for index, obs in enumerate(observations) if index not in taken]
        for observation in sorted(unmatched, key=lambda obs: obs.score, reverse=True):
            if len(self._tracks) >= self._max_tracks:
                break
            self._tracks.append(Track(key=self._next_key, box=observation.box, score=observation.score,
                                      eyes=observation.eyes, observation=observation))
            self._next_key += 1
        for track in self._tracks:
            if not track.confirmed and track.hits >= self._min_hits:
                track.track_id = self._new_id()
        visible = [track for track in self._tracks if track.confirmed and track.observation is not None]
        return TrackerUpdate(visible=visible, lost=lost)

    def _associate(self, tracks: list[Track], observations: Sequence[Observation]) -> tuple[list[int], list[int]]:
        if not tracks or not observations:
            return [], []
        cost = np.array([[self._cost(track, obs) for obs in observations] for track in tracks])
        rows, cols = linear_sum_assignment(cost)
        keep = cost[rows, cols] < _FORBIDDEN
        return rows[keep].tolist(), cols[keep].tolist()

    def _cost(self, track: Track, observation: Observation) -> float:
        predicted = track.predicted_box()
        size = math.sqrt(max(predicted.area, 1e-9))
        observed_size = math.sqrt(max(observation.box.area, 1e-9))
        if max(size / observed_size, observed_size / size) > MAX_SIZE_RATIO:
            return _FORBIDDEN
        iou = predicted.iou(observation.box)
        observed_eyes = observation.eyes
        if track.eyes is not None and observed_eyes is not None:
            (right_dx, right_dy), (left_dx, left_dy) = (track.eyes + track.predicted_shift() - observed_eyes).tolist()
            distance = (math.hypot(right_dx, right_dy) + math.hypot(left_dx, left_dy)) / 2.0 / size
        else:
            distance = math.hypot(*(_centre(predicted) - _centre(observation.box)).tolist()) / size
        # The position is less certain the longer a track goes unseen.
        max_distance = self._max_centre_distance * math.sqrt(track.misses + 1)
        if iou < self._iou_threshold and distance > max_distance:
            return _FORBIDDEN
        return (1.0 - iou) + distance

    def _apply(self, track: Track, observation: Observation) -> None:
        displacement = (_centre(observation.box) - _centre(track.box)) / (track.misses + 1)
        if track.hits == 1:
            track.velocity = displacement
        else:
            track.velocity = VELOCITY_SMOOTHING * displacement + (1.0 - VELOCITY_SMOOTHING) * track.velocity
        track.box = observation.box
        track.score = observation.score
        track.eyes = observation.eyes
        track.hits += 1
        track.misses = 0
        track.observation = observation

    def _age_unmatched(self) -> list[Track]:
        """Count a miss for every unmatched track; drop and return those that end."""
        lost, alive = [], []
        for track in self._tracks:
            if track.observation is not None:
                alive.append(track)
                continue
            track.misses += 1
            if not track.confirmed:
                continue
            if track.misses > self._max_misses:
                lost.append(track)
            else:
                alive.append(track)
        self._tracks = alive
        return lost

    def _new_id(self) -> str:
        track_id = f"f{self._confirmed_count}{self._id_tag}"
        self._confirmed_count += 1
        return track_id


def _centre(box: BoundingBox) -> np.ndarray:
    return np.array([box.x + box.width / 2.0, box.y + box.height / 2.0])
