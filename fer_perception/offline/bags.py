"""rosbag2 files through the ``rosbags`` library: no ROS install is needed to read or write them.

A bag is a rosbag2 folder (``metadata.yaml`` plus ``.mcap`` or ``.db3``
storage); a storage file inside such a folder is accepted for its folder.
The type store knows the standard ROS 2 Kilted types and ``fer_msgs``
(registered from ``fer_msgs/msg/*.msg``), so result bags read back as typed
messages and open in Foxglove or ``ros2 bag play``.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from fer_perception.image_codec import ImageDecodeError, decode_compressed, decode_image
from fer_perception.paths import share_dir

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
STORAGE_SUFFIXES = {".mcap": StoragePlugin.MCAP, ".db3": StoragePlugin.SQLITE3}
BAG_VERSION = 9  # rosbag2 metadata version of ROS 2 Jazzy and later
DEFINITION_SEPARATOR = "=" * 80 + "\n"
LOGGED_DECODE_ERRORS = 5  # undecodable images logged one by one; the rest are counted

log = logging.getLogger(__name__)


class BagError(RuntimeError):
    """A bag that cannot be used: not a bag, truncated or corrupt, no (or an ambiguous) image topic."""


def fer_msgs_dir() -> Path:
    """The folder with the ``fer_msgs`` ``.msg`` files (source checkout or installed share)."""
    checkout = share_dir() / "fer_msgs" / "msg"
    if checkout.is_dir():
        return checkout
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("fer_msgs")) / "msg"


@lru_cache(maxsize=1)
def typestore() -> Typestore:
    """ROS 2 Kilted's standard types plus every ``fer_msgs`` message."""
    store = get_typestore(Stores.ROS2_KILTED)
    types: dict = {}
    for path in sorted(fer_msgs_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"fer_msgs/msg/{path.stem}"))
    store.register(types)
    return store


def message_definition(msgtype: str) -> str:
    """The definition a bag stores for ``msgtype``: as ``ros2 bag record`` writes it, ``fer_msgs`` parts verbatim.

    rosbags regenerates definitions from parsed types and writes string constants unquoted, which it
    cannot parse back when they hold commas (``AU_NUMBERS``); the ``.msg`` files' own text avoids that.
    """
    generated, _ = typestore().generate_msgdef(msgtype, ros_version=2)
    sections = generated.split(DEFINITION_SEPARATOR)
    names = [msgtype] + [section.split("\n", 1)[0].removeprefix("MSG: ") for section in sections[1:]]
    parts = []
    for index, (name, section) in enumerate(zip(names, sections)):
        package, type_name = name.split("/")[0], name.split("/")[-1]
        if package == "fer_msgs":
            body = (fer_msgs_dir() / f"{type_name}.msg").read_text()
            section = body if index == 0 else f"MSG: {name}\n{body}"
        parts.append(section)
    return DEFINITION_SEPARATOR.join(parts)


def add_connection(writer: Writer, topic: str, msgtype: str):
    """A writer connection for ``topic`` with the stored definition of :func:`message_definition`."""
    return writer.add_connection(topic, msgtype, msgdef=message_definition(msgtype),
                                 rihs01=typestore().hash_rihs01(msgtype))


def bag_folder(path: Path) -> Path:
    """The rosbag2 folder of ``path`` (the folder itself, or the folder of a storage file)."""
    if not path.exists():
        raise BagError(f"{path}: no such file or folder")
    folder = path if path.is_dir() else path.parent
    if not (folder / "metadata.yaml").is_file():
        raise BagError(f"{path} is not a rosbag2 bag (a folder with metadata.yaml and .mcap or .db3 storage)")
    return folder


def is_bag(path: Path) -> bool:
    """Whether ``path`` is a rosbag2 folder or a storage file inside one."""
    if path.is_dir():
        return (path / "metadata.yaml").is_file()
    return path.suffix in STORAGE_SUFFIXES and (path.parent / "metadata.yaml").is_file()


def open_reader(folder: Path) -> AnyReader:
    """An open reader of the bag in ``folder``; :class:`BagError` if it cannot be opened."""
    try:
        reader = AnyReader([folder], default_typestore=typestore())
        reader.open()
    except Exception as error:  # rosbags raises many types for broken files
        raise BagError(f"cannot open bag {folder} (truncated or corrupt): {error}") from error
    return reader


@contextmanager
def storage_errors(folder: Path) -> Iterator[None]:
    """Within the block, what rosbags raises for broken storage while reading (many types) as :class:`BagError`."""
    try:
        yield
    except Exception as error:  # truncated or corrupt storage
        raise BagError(f"bag {folder} is truncated or corrupt: {error}") from error


@dataclass(frozen=True)
class BagImage:
    """One decoded image of a bag: BGR pixels, its header (stamp, frame_id) and the time the bag recorded it."""

    image: np.ndarray
    stamp_ns: int
    frame_id: str
    recorded_ns: int


class ImageBag:
    """The images of one topic of a bag, in recorded order."""

    def __init__(self, path: Path, topic: str | None = None):
        self.path = bag_folder(path)
        self._reader = open_reader(self.path)
        topics = {c.topic: c.msgtype for c in self._reader.connections if c.msgtype in IMAGE_TYPES}
        self.topic = self._choose_topic(topics, topic)
        self.msgtype = topics[self.topic]
        self._connections = [c for c in self._reader.connections if c.topic == self.topic]
        self.message_count = sum(c.msgcount for c in self._connections)
        self.undecodable = 0
        self.first_decode_error: str | None = None  # why the first undecodable image was skipped

    def _choose_topic(self, topics: dict[str, str], wanted: str | None) -> str:
        listing = ", ".join(f"{name} ({kind})" for name, kind in sorted(topics.items())) or "none"
        if wanted is not None:
            if wanted not in topics:
                self.close()
                raise BagError(f"bag {self.path} has no image topic {wanted}; its image topics: {listing}")
            return wanted
        if not topics:
            every = ", ".join(sorted(f"{c.topic} ({c.msgtype})" for c in self._reader.connections)) or "none"
            self.close()
            raise BagError(f"bag {self.path} has no image topic (sensor_msgs/Image or CompressedImage); "
                           f"its topics: {every}")
        if len(topics) > 1:
            self.close()
            raise BagError(f"bag {self.path} has several image topics (sensor_msgs/Image or CompressedImage); "
                           f"choose one with --topic. Image topics: {listing}")
        return next(iter(topics))

    def images(self) -> Iterator[BagImage]:
        """Decoded images in recorded order; raises :class:`BagError` where the bag's data ends early.

        An image that does not decode (unsupported encoding, wrong size) is skipped, counted in
        :attr:`undecodable` and logged (the first few, then a count at the end); the first one's reason stays in
        :attr:`first_decode_error`, so a caller can say why images are missing.
        """
        with storage_errors(self.path):
            for connection, recorded_ns, raw in self._reader.messages(connections=self._connections):
                msg = self._reader.deserialize(raw, connection.msgtype)
                stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                try:
                    image = decode_message_image(msg)
                except ImageDecodeError as error:
                    self._skip(error)
                    continue
                yield BagImage(image, stamp_ns, msg.header.frame_id, recorded_ns)
        if self.undecodable > LOGGED_DECODE_ERRORS:
            log.warning("%s: %d images of %s could not be decoded and were skipped", self.path, self.undecodable,
                        self.topic)

    def _skip(self, error: ImageDecodeError) -> None:
        self.undecodable += 1
        self.first_decode_error = self.first_decode_error or str(error)
        if self.undecodable <= LOGGED_DECODE_ERRORS:
            log.warning("%s: skipping an image of %s: %s", self.path, self.topic, error)

    def recorded_times(self, limit: int) -> list[int]:
        """Recording times (ns) of the first ``limit`` images, without decoding them; those before a break in the
        storage where it breaks off sooner (reading the images reports the break)."""
        times = []
        try:
            for _, recorded_ns, _ in self._reader.messages(connections=self._connections):
                times.append(recorded_ns)
                if len(times) >= limit:
                    break
        except Exception:  # rosbags raises many types for broken storage; :meth:`images` reports the break
            pass
        return times

    def close(self) -> None:
        self._reader.close()


@dataclass(frozen=True)
class RawMessage:
    """One serialized (CDR) message of a bag, as ``ros2 bag play`` would publish it."""

    topic: str
    msgtype: str
    recorded_ns: int
    data: bytes


class RawBag:
    """The serialized messages of chosen topics of a bag, within a window of its recording time."""

    def __init__(self, path: Path, topics: list[str] | None = None):
        """``topics``: the topics to read; none given: every image topic."""
        self.path = bag_folder(path)
        self._reader = open_reader(self.path)
        available = {c.topic: c.msgtype for c in self._reader.connections}
        wanted = topics or [t for t, kind in available.items() if kind in IMAGE_TYPES]
        missing = [t for t in wanted if t not in available]
        if missing or not wanted:
            self._reader.close()
            listing = ", ".join(f"{t} ({k})" for t, k in sorted(available.items())) or "none"
            raise BagError(f"bag {self.path}: {'no topic ' + ', '.join(missing) if missing else 'no image topic'}; "
                           f"its topics: {listing}")
        self.available = available
        """Every topic of the bag, with its type."""
        self.topics = {t: available[t] for t in wanted}
        self._connections = [c for c in self._reader.connections if c.topic in self.topics]
        self.start_ns = self._reader.start_time

    def messages(self, start_s: float = 0.0, duration_s: float = 0.0) -> Iterator[RawMessage]:
        """Messages from ``start_s`` after the bag's start, for ``duration_s`` (0: to the end)."""
        start = self.start_ns + round(start_s * 1e9)
        stop = start + round(duration_s * 1e9) if duration_s > 0 else None
        with storage_errors(self.path):
            for connection, recorded_ns, raw in self._reader.messages(connections=self._connections, start=start,
                                                                      stop=stop):
                yield RawMessage(connection.topic, connection.msgtype, recorded_ns, bytes(raw))

    def close(self) -> None:
        self._reader.close()


def decode_message_image(msg) -> np.ndarray:
    """BGR pixels of a deserialized ``Image`` or ``CompressedImage``."""
    if hasattr(msg, "format"):
        return decode_compressed(msg.format, msg.data)
    return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)


def open_writer(path: Path) -> Writer:
    """A rosbag2 writer; ``path`` names the storage file, ``name.mcap`` (default) or ``name.db3``.

    As ``ros2 bag record`` does, the bag is a folder, ``name/``, holding ``name.mcap`` (or ``.db3``) and
    ``metadata.yaml``; :func:`written_bag` gives that folder.
    """
    writer = Writer(written_bag(path), version=BAG_VERSION,
                    storage_plugin=STORAGE_SUFFIXES.get(path.suffix, StoragePlugin.MCAP))
    writer.open()
    return writer


def written_bag(path: Path) -> Path:
    """The bag folder :func:`open_writer` makes for ``path``."""
    return path.with_suffix("") if path.suffix in STORAGE_SUFFIXES else path
