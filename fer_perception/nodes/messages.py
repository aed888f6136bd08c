"""Translation between the core's data classes and fer_msgs messages.

Every node and tool that reads or writes fer_msgs goes through here, so a
field is converted in exactly one place.
"""
from __future__ import annotations

import array
import math

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from fer_msgs.msg import BoundingBox as BoxMsg
from fer_msgs.msg import Event, Events, Expression, Expressions, Face, FaceCrop, FaceCrops, Faces
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fer_perception.expression_pipeline import ExpressionFrame, FaceExpression
from fer_perception.image_codec import decode_image, encode_bgr8, encode_rgb8
from fer_perception.types import (EMOTION_LABELS, ActionUnits, BoundingBox, ExpressionEvent, FaceFrame, FaceQuality,
                                  HeadPose, TrackedFace)


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


def expression_msg(expression: FaceExpression) -> Expression:
    units = expression.aus
    msg = Expression(face_id=expression.face_id,
                     au_intensity=units.intensity.astype(np.float32),
                     au_intensity_smoothed=expression.au_smoothed.astype(np.float32),
                     au_estimated=units.estimated.tolist(),
                     au_confidence=units.confidence.astype(np.float32),
                     au_calibration=units.calibration,
                     eyes_estimated=units.eyes_estimated,
                     left_eye_closure=units.left_eye_closure, right_eye_closure=units.right_eye_closure,
                     left_eye_closure_smoothed=expression.eye_closure_smoothed[0],
                     right_eye_closure_smoothed=expression.eye_closure_smoothed[1],
                     emotion_estimated=expression.emotion is not None)
    if expression.emotion is not None:
        msg.emotion_probabilities = expression.emotion.astype(np.float32)
        msg.emotion_probabilities_smoothed = expression.emotion_smoothed.astype(np.float32)
        msg.label, msg.label_name = expression.label, EMOTION_LABELS[expression.label]
        msg.label_smoothed = expression.label_smoothed
        msg.label_smoothed_name = EMOTION_LABELS[expression.label_smoothed]
        msg.confidence = expression.confidence
        msg.valence, msg.arousal = expression.valence, expression.arousal
        msg.valence_smoothed, msg.arousal_smoothed = expression.valence_smoothed, expression.arousal_smoothed
        msg.valence_arousal_confidence = expression.valence_arousal_confidence
    return msg


def expressions_msg(frame: ExpressionFrame, header: Header) -> Expressions:
    return Expressions(header=header, expressions=[expression_msg(e) for e in frame.expressions])


def event_msg(event: ExpressionEvent) -> Event:
    return Event(event_id=event.event_id, face_id=event.face_id, kind=event.kind, phase=event.phase,
                 detail=event.detail, start=ns_to_stamp(event.start_ns), end=ns_to_stamp(event.end_ns),
                 duration=float(event.duration_s), peak_value=float(event.peak), mean_value=float(event.mean))


def expression_event(msg: Event) -> ExpressionEvent:
    return ExpressionEvent(msg.event_id, msg.face_id, msg.kind, msg.phase, msg.detail, stamp_to_ns(msg.start),
                           stamp_to_ns(msg.end), msg.duration, msg.peak_value, msg.mean_value)


def events_msg(events: list[ExpressionEvent], header: Header) -> Events:
    return Events(header=header, events=[event_msg(e) for e in events])


def crop_images(msg: FaceCrops) -> list[np.ndarray]:
    """The crops of a crops message as RGB arrays, in order."""
    return [cv2.cvtColor(decode_image(c.image.encoding, c.image.height, c.image.width, c.image.step,
                                      c.image.is_bigendian, c.image.data), cv2.COLOR_BGR2RGB) for c in msg.crops]


def face_expression(msg: Expression) -> FaceExpression:
    """The core's view of an expression message."""
    units = ActionUnits(np.asarray(msg.au_intensity, np.float64), np.asarray(msg.au_estimated, bool),
                        np.asarray(msg.au_confidence, np.float64), msg.left_eye_closure, msg.right_eye_closure,
                        msg.eyes_estimated, msg.au_calibration)
    expression = FaceExpression(msg.face_id, units, np.asarray(msg.au_intensity_smoothed, np.float64),
                                (msg.left_eye_closure_smoothed, msg.right_eye_closure_smoothed))
    if msg.emotion_estimated:
        expression.emotion = np.asarray(msg.emotion_probabilities, np.float64)
        expression.emotion_smoothed = np.asarray(msg.emotion_probabilities_smoothed, np.float64)
        expression.label, expression.label_smoothed = msg.label, msg.label_smoothed
        expression.confidence = msg.confidence
        expression.valence, expression.arousal = msg.valence, msg.arousal
        expression.valence_smoothed, expression.arousal_smoothed = msg.valence_smoothed, msg.arousal_smoothed
        expression.valence_arousal_confidence = msg.valence_arousal_confidence
    return expression


def bgr8_image_msg(image_bgr: np.ndarray, header: Header) -> Image:
    """A ``sensor_msgs/Image`` of a BGR frame (data assigned as bytes: fast in rclpy)."""
    encoding, height, width, step, data = encode_bgr8(image_bgr)
    msg = Image(header=header, encoding=encoding, height=height, width=width, step=step)
    msg.data = data
    return msg
