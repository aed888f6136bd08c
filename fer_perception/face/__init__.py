"""ROS-free face front end: find faces, fit the mesh, track identities, align crops.

Importing the package registers the built-in detector backends, so
``create_detector`` can resolve every name listed by ``detector_names``.
"""
from fer_perception.face import mediapipe_detector as _builtin_backends  # noqa: F401  (registers backends)
from fer_perception.face.detector import Detection, FaceDetector, create_detector, detector_names, register_detector
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig

__all__ = [
    "Detection",
    "FaceDetector",
    "FaceFrontEnd",
    "FaceFrontEndConfig",
    "create_detector",
    "detector_names",
    "register_detector",
]
