"""Conversion between ROS image message fields and numpy BGR frames.

Every node and offline tool turns ``sensor_msgs/Image`` and
``sensor_msgs/CompressedImage`` contents into numpy arrays through this one
module, so the conversion is shared and unit-tested without ROS.  The
functions take the message *fields* (``encoding``, ``height``, ``width``,
``step``, ``is_bigendian``, ``data`` / ``format``, ``data``) rather than a
message object, which makes them work equally with rclpy messages (``data``
is ``array.array('B')`` or ``bytes``) and with ``rosbags`` messages (``data``
is a numpy ``uint8`` array).

Decoding always returns a new, C-contiguous, writable ``uint8`` array of
shape ``(height, width, 3)`` in BGR order that shares no memory with the
message buffer.  The input bytes are first viewed without copying (row
padding given by ``step`` is skipped with strides), then converted in a single
pass, so a ``bgr8`` frame costs exactly one copy.

This module must not import ROS packages.
"""
from __future__ import annotations

import operator
from typing import NamedTuple

import cv2
import numpy as np

__all__ = [
    "SUPPORTED_ENCODINGS",
    "SUPPORTED_COMPRESSED_FORMATS",
    "ImageDecodeError",
    "EncodedImage",
    "decode_image",
    "decode_compressed",
    "encode_bgr8",
    "encode_rgb8",
    "encode_image",
]


class ImageDecodeError(ValueError):
    """An image message cannot be turned into a BGR array; the text says why, ``cause`` names the kind of
    fault in a word or two (so that nodes can rate-limit their warnings per cause, not per node)."""

    def __init__(self, message: str, cause: str):
        super().__init__(message)
        self.cause = cause


# encoding -> (channels, bytes per channel) as laid out in the message buffer.
# yuv422 variants are 2 bytes per pixel (one luma sample plus alternating
# U / V), described here as 2 one-byte "channels".
_LAYOUT: dict[str, tuple[int, int]] = {
    "bgr8": (3, 1),
    "rgb8": (3, 1),
    "mono8": (1, 1),
    "rgba8": (4, 1),
    "bgra8": (4, 1),
    "mono16": (1, 2),
    "16UC1": (1, 2),
    "8UC1": (1, 1),
    "8UC3": (3, 1),
    "yuv422": (2, 1),
    "yuv422_yuy2": (2, 1),
}

#: Raw ``sensor_msgs/Image`` encodings accepted by :func:`decode_image` and
#: produced by :func:`encode_image`.
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUT)

#: Compression kinds accepted by :func:`decode_compressed`.
SUPPORTED_COMPRESSED_FORMATS: tuple[str, ...] = ("jpeg", "png")

# Single cv2.cvtColor code that turns the raw view into BGR.
_TO_BGR: dict[str, int] = {
    "rgb8": cv2.COLOR_RGB2BGR,
    "mono8": cv2.COLOR_GRAY2BGR,
    "8UC1": cv2.COLOR_GRAY2BGR,
    "rgba8": cv2.COLOR_RGBA2BGR,
    "bgra8": cv2.COLOR_BGRA2BGR,
    # ROS "yuv422" is UYVY (U0 Y0 V0 Y1); "yuv422_yuy2" is YUYV (Y0 U0 Y1 V0).
    "yuv422": cv2.COLOR_YUV2BGR_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2BGR_YUYV,
}

_FROM_BGR: dict[str, int] = {
    "rgb8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_BGR2RGBA,
    "bgra8": cv2.COLOR_BGR2BGRA,
    "yuv422": cv2.COLOR_BGR2YUV_UYVY,
    "yuv422_yuy2": cv2.COLOR_BGR2YUV_YUYV,
}

_MONO8 = ("mono8", "8UC1")
_MONO16 = ("mono16", "16UC1")
_YUV = ("yuv422", "yuv422_yuy2")

# Value written into row padding by encode_image; non-zero so that a decoder
# that wrongly reads padding bytes produces visibly wrong pixels in tests.
_PAD_BYTE = 0xA5


def _byte_view(data) -> np.ndarray:
    """Flat ``uint8`` view of a bytes-like ``data`` (no copy when it is contiguous)."""
    if isinstance(data, np.ndarray):
        if data.dtype.hasobject:
            raise ImageDecodeError(
                f"data is a numpy array of dtype {data.dtype}, expected raw bytes", cause="data type")
        if not data.flags.c_contiguous:
            data = np.ascontiguousarray(data)
        return data.reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):
        pass
    # A buffer exporter that is not C-contiguous (e.g. a strided memoryview):
    # gather it into contiguous memory once.
    try:
        view = memoryview(data)
    except TypeError:
        pass
    else:
        return np.ascontiguousarray(np.asarray(view)).reshape(-1).view(np.uint8)
    raise ImageDecodeError(
        "data must be bytes-like (bytes, bytearray, memoryview, array.array "
        f"or numpy array), got {type(data).__name__}", cause="data type")


def _as_int(name: str, value) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise ImageDecodeError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}", cause="field type") from None


def decode_image(encoding: str, height: int, width: int, step: int,
                 is_bigendian: bool, data) -> np.ndarray:
    """Decode ``sensor_msgs/Image`` fields into a BGR ``uint8`` array.

    Args:
        encoding: one of :data:`SUPPORTED_ENCODINGS` (case-sensitive, as in ROS).
        height, width: image size in pixels; both must be positive.
        step: bytes per row in ``data``, at least ``width * channels * bytes``;
            anything beyond that is row padding and is skipped.
        is_bigendian: byte order of 16-bit encodings (ignored for 8-bit ones).
        data: the pixel buffer, ``step * height`` bytes long, as bytes,
            bytearray, memoryview, array.array or numpy array.

    Returns:
        A new C-contiguous, writable array of shape ``(height, width, 3)`` in
        BGR order.  Grey encodings are replicated into the three channels;
        16-bit ones are scaled to 8 bits by taking the high byte (``>> 8``);
        alpha is dropped.

    Raises:
        ImageDecodeError: unsupported encoding, bad size, step or data length.
    """
    layout = _LAYOUT.get(encoding)
    if layout is None:
        raise ImageDecodeError(
            f"unsupported encoding {encoding!r} "
            f"(supported: {', '.join(SUPPORTED_ENCODINGS)})", cause="unsupported encoding")
    channels, depth = layout
    height = _as_int("height", height)
    width = _as_int("width", width)
    step = _as_int("step", step)
    if height < 0 or width < 0:
        raise ImageDecodeError(f"negative image size {width}x{height}", cause="image size")
    if height == 0 or width == 0:
        raise ImageDecodeError(f"zero-size image {width}x{height}", cause="image size")
    if encoding in _YUV and width % 2:
        raise ImageDecodeError(
            f"{encoding} needs an even width (two pixels share chroma), got {width}", cause="image size")
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ImageDecodeError(
            f"step {step} is smaller than width*channels*bytes = {row_bytes} "
            f"({width}*{channels}*{depth} for {encoding})", cause="step")
    buf = _byte_view(data)
    expected = step * height
    if buf.size != expected:
        raise ImageDecodeError(
            f"data has {buf.size} bytes, expected step*height = {expected} "
            f"({step}*{height})", cause="data length")

    if encoding in _MONO16:
        # value >> 8 is simply the most significant byte of each sample: view
        # those bytes (offset 0 big-endian, 1 little-endian) and broadcast them
        # into the three output channels in one pass.
        high = np.ndarray((height, width), dtype=np.uint8, buffer=buf,
                          offset=0 if is_bigendian else 1, strides=(step, 2))
        out = np.empty((height, width, 3), dtype=np.uint8)
        out[...] = high[:, :, None]
        return out

    if channels == 1:
        view = np.ndarray((height, width), dtype=np.uint8, buffer=buf,
                          strides=(step, 1))
    else:
        view = np.ndarray((height, width, channels), dtype=np.uint8, buffer=buf,
                          strides=(step, channels, 1))

    code = _TO_BGR.get(encoding)
    if code is None:  # bgr8 / 8UC3: already BGR, one copy into owned memory
        return np.array(view, dtype=np.uint8, order="C", copy=True)
    out = cv2.cvtColor(view, code)
    # cv2 allocates a fresh contiguous result; guard the documented contract.
    return out if out.flags.c_contiguous else np.ascontiguousarray(out)


def _compressed_kind(format: str) -> str:
    """'jpeg', 'png' or '' (unknown: let the decoder sniff) from a ROS format string."""
    fmt = (format or "").strip().lower()
    if "compresseddepth" in fmt:
        raise ImageDecodeError(
            f"unsupported compressed format {format!r}: compressedDepth streams "
            f"are not supported (supported: {', '.join(SUPPORTED_COMPRESSED_FORMATS)})", cause="unsupported format")
    if not fmt:
        return ""
    if "jpeg" in fmt or "jpg" in fmt:
        return "jpeg"
    if "png" in fmt:
        return "png"
    raise ImageDecodeError(
        f"unsupported compressed format {format!r} "
        f"(supported: {', '.join(SUPPORTED_COMPRESSED_FORMATS)})", cause="unsupported format")


def decode_compressed(format: str, data) -> np.ndarray:
    """Decode ``sensor_msgs/CompressedImage`` fields into a BGR ``uint8`` array.

    Args:
        format: the message's ``format`` string as image_transport writes it,
            e.g. ``"jpeg"``, ``"png"``, ``"bgr8; jpeg compressed bgr8"``,
            ``"rgb8; jpeg compressed bgr8"``, ``"mono16; png compressed"``.
            Only the compression kind matters: the compressed stream decodes to
            BGR whatever the original encoding was.  An empty string is
            accepted and the kind is detected from the data.
        data: the compressed bytes (any bytes-like object or numpy array).

    Returns:
        A C-contiguous ``(height, width, 3)`` BGR ``uint8`` array (grey images
        are replicated, 16-bit PNGs are scaled by ``>> 8``, alpha dropped).
        EXIF orientation, if any, is ignored so that pixels stay in sensor
        layout like raw images.

    Raises:
        ImageDecodeError: unsupported format or data that does not decode.
    """
    kind = _compressed_kind(format)
    buf = _byte_view(data)
    label = kind or "image"
    if buf.size == 0:
        raise ImageDecodeError(f"could not decode {label} data (0 bytes)", cause="corrupt data")
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as exc:
        raise ImageDecodeError(
            f"could not decode {label} data ({buf.size} bytes): {exc}", cause="corrupt data") from None
    if img is None:
        raise ImageDecodeError(f"could not decode {label} data ({buf.size} bytes)", cause="corrupt data")
    if img.dtype != np.uint8:  # defensive: IMREAD_COLOR already yields 8-bit
        img = (img >> 8).astype(np.uint8) if img.dtype == np.uint16 else img.astype(np.uint8)
    return img if img.flags.c_contiguous else np.ascontiguousarray(img)


class EncodedImage(NamedTuple):
    """``sensor_msgs/Image`` fields, ordered like :func:`decode_image`'s arguments.

    ``decode_image(*encode_image(img, enc))`` therefore round-trips.
    """

    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: bool
    data: bytes


def _check_three_channel(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected a 3-channel uint8 image of shape (H, W, 3), got dtype "
            f"{image.dtype} shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"zero-size image {image.shape[1]}x{image.shape[0]}")
    return image


def encode_bgr8(image: np.ndarray) -> tuple[str, int, int, int, bytes]:
    """Fields ``(encoding, height, width, step, data)`` to publish a BGR frame as ``bgr8``.

    ``data`` is ``bytes`` on purpose: assigning bytes to an rclpy message
    field is ~0.03 ms while assigning a numpy array takes 20-40 ms.
    """
    image = _check_three_channel(image)
    h, w = image.shape[:2]
    return "bgr8", h, w, w * 3, image.tobytes()


def encode_rgb8(image_rgb: np.ndarray) -> tuple[str, int, int, int, bytes]:
    """Like :func:`encode_bgr8` for an image that is already RGB (a face crop): published as is."""
    image = _check_three_channel(image_rgb)
    h, w = image.shape[:2]
    return "rgb8", h, w, w * 3, image.tobytes()


def encode_image(image: np.ndarray, encoding: str, row_padding: int = 0,
                 is_bigendian: bool = False) -> EncodedImage:
    """Encode a BGR frame into any of :data:`SUPPORTED_ENCODINGS`.

    Used by tests (``decode_image(*encode_image(x, enc))``) and by test
    publishers.

    Args:
        image: ``(H, W, 3)`` BGR ``uint8`` frame.  For grey encodings a 2-D
            array is also accepted and written as is: ``uint8`` for
            ``mono8``/``8UC1``, ``uint16`` (or ``uint8``, scaled by 257) for
            ``mono16``/``16UC1``.  A BGR frame encoded as 16-bit becomes
            ``gray * 257`` so that decoding (``>> 8``) gives ``gray`` back.
        encoding: target encoding.
        row_padding: extra bytes appended to every row (``step`` grows by that
            much); they are filled with a non-zero value.
        is_bigendian: byte order for 16-bit encodings (recorded in the result
            for all encodings).

    Raises:
        ValueError: unsupported encoding, bad image or negative padding
            (:class:`ImageDecodeError` for an unsupported encoding).
    """
    if encoding not in _LAYOUT:
        raise ImageDecodeError(
            f"unsupported encoding {encoding!r} "
            f"(supported: {', '.join(SUPPORTED_ENCODINGS)})", cause="unsupported encoding")
    row_padding = operator.index(row_padding)
    if row_padding < 0:
        raise ValueError(f"row_padding must be >= 0, got {row_padding}")
    image = np.asarray(image)

    if image.ndim == 2 and (encoding in _MONO8 or encoding in _MONO16):
        if image.size == 0:
            raise ValueError(f"zero-size image {image.shape[1]}x{image.shape[0]}")
        if encoding in _MONO8:
            if image.dtype != np.uint8:
                raise ValueError(f"{encoding} needs a uint8 image, got {image.dtype}")
            pixels = image
        elif image.dtype == np.uint16:
            pixels = image
        elif image.dtype == np.uint8:
            pixels = image.astype(np.uint16) * 257
        else:
            raise ValueError(f"{encoding} needs a uint16 or uint8 image, got {image.dtype}")
    else:
        image = _check_three_channel(image)
        if encoding in _MONO8 or encoding in _MONO16:
            pixels = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            if encoding in _MONO16:
                pixels = pixels.astype(np.uint16) * 257
        elif encoding in _FROM_BGR:
            if encoding in _YUV and image.shape[1] % 2:
                raise ValueError(f"{encoding} needs an even width, got {image.shape[1]}")
            pixels = cv2.cvtColor(image, _FROM_BGR[encoding])
        else:  # bgr8 / 8UC3
            pixels = image

    if encoding in _MONO16:
        pixels = pixels.astype(">u2" if is_bigendian else "<u2", copy=False)
    height, width = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels).reshape(height, -1).view(np.uint8)
    row_bytes = rows.shape[1]
    if row_padding:
        padded = np.full((height, row_bytes + row_padding), _PAD_BYTE, dtype=np.uint8)
        padded[:, :row_bytes] = rows
        rows = padded
    return EncodedImage(encoding, height, width, row_bytes + row_padding,
                        bool(is_bigendian), rows.tobytes())
