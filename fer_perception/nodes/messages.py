"""Translation between the core's data classes and fer_msgs messages.

Every node and tool that reads or writes fer_msgs goes through here, so a
field is converted in exactly one place.
"""
from __future__ import annotations

import array
import math

import numpy as np
from builtin_interfaces.msg import Time
from fer_msgs.msg import BoundingBox as BoxMsg
from fer_msgs.msg import Face, FaceCrop, FaceCrops, Faces
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fer_perception.image_codec import encode_rgb8
from fer_perception.types import BoundingBox, FaceFrame, FaceQuality, HeadPose, TrackedFace


def float32_array(values: np.ndarray) -> array.array:
    """A float32 sequence field value; assigning numpy arrays to rclpy fields is slow."""
    return array.array("f", np.ascontiguousarray(values, dtype=np.float32).tobytes())


def stamp_to_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def ns_to_stamp(nanoseconds: int) -> Time:
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def box_msg(box: BoundingBox) -> BoxMsg:
    return BoxMsg(x=float(box.x), y=float(box.y), width=float(box.width), height=float(box.height))


def face_msg(face: TrackedFace, image_width: int, image_height: int) -> Face:
    pose = face.head_pose
    return Face(
        id=face.track_id,
        box=box_msg(face.box),
        box_normalized=box_msg(face.box.normalized(image_width, image_height)),
        detection_confidence=float(face.detection_confidence),
        landmarks=float32_array(face.landmarks.ravel()) if face.landmarks is not None else array.array("f"),
        yaw=float(pose.yaw), pitch=float(pose.pitch), roll=float(pose.roll),
        quality=float(face.quality.score), size_px=float(face.quality.size_px),
    )


def faces_msg(frame: FaceFrame, header: Header) -> Faces:
    return Faces(header=header, image_width=frame.image_width, image_height=frame.image_height,
                 faces=[face_msg(f, frame.image_width, frame.image_height) for f in frame.faces],
                 lost_ids=list(frame.lost))


def tracked_face(msg: Face) -> TrackedFace:
    """The core's view of a face message (quality keeps only score and size)."""
    landmarks = np.frombuffer(msg.landmarks, dtype=np.float32).reshape(-1, 3) if len(msg.landmarks) else None
    return TrackedFace(
        track_id=msg.id,
        box=BoundingBox(msg.box.x, msg.box.y, msg.box.width, msg.box.height),
        detection_confidence=msg.detection_confidence,
        landmarks=landmarks,
        head_pose=HeadPose(msg.yaw, msg.pitch, msg.roll),
        quality=FaceQuality(size_px=msg.size_px, detection_confidence=msg.detection_confidence,
                            score=msg.quality),
    )


def face_frame(msg: Faces) -> FaceFrame:
    return FaceFrame(stamp_to_ns(msg.header.stamp), msg.image_width, msg.image_height,
                     [tracked_face(f) for f in msg.faces], list(msg.lost_ids))


def crops_msg(frame: FaceFrame, crops: list[np.ndarray], header: Header) -> FaceCrops:
    """The crops message; ``crops[i]`` is the aligned RGB crop of ``frame.faces[i]``."""
    items = []
    for face, crop in zip(frame.faces, crops):
        encoding, height, width, step, data = encode_rgb8(crop)
        image = Image(header=header, encoding=encoding, height=height, width=width, step=step)
        image.data = data
        transform = face.crop_transform if face.crop_transform is not None else np.full((2, 3), math.nan)
        items.append(FaceCrop(face=face_msg(face, frame.image_width, frame.image_height), image=image,
                              image_to_crop=transform.astype(np.float32).ravel()))
    return FaceCrops(header=header, crops=items)
