"""Tests for fer_perception.image_codec on a real photo (no ROS, no mocks).

Raw buffers are built here directly with numpy (independently of
``encode_image``) so that the decoder is checked against the wire layout, and
``encode_image`` is then checked separately through round trips.
"""
from __future__ import annotations

import array
import ast
import os
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_perception.image_codec import (
    SUPPORTED_COMPRESSED_FORMATS,
    SUPPORTED_ENCODINGS,
    EncodedImage,
    ImageDecodeError,
    decode_compressed,
    decode_image,
    encode_bgr8,
    encode_image,
    encode_rgb8,
)

REPO = Path(__file__).resolve().parents[1]
MODULE_PATH = REPO / "fer_perception" / "image_codec.py"
DATA_DIR = Path(os.environ.get("FER_DATA_DIR", REPO.parent / "shared" / "data"))
PHOTO = DATA_DIR / "media" / "single_face.jpg"

LOSSLESS_COLOUR = ("bgr8", "8UC3", "rgb8", "rgba8", "bgra8")
MONO8 = ("mono8", "8UC1")
MONO16 = ("mono16", "16UC1")
YUV = ("yuv422", "yuv422_yuy2")
PADDINGS = (0, 1, 5, 64)  # 0 = tight rows; odd values make 16-bit rows unaligned
PAD_BYTE = 0x5A


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    if not PHOTO.is_file():
        pytest.fail(f"test photo missing: {PHOTO} (set FER_DATA_DIR to the shared data "
                    f"directory containing media/single_face.jpg)")
    img = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    if img is None:
        pytest.fail(f"test photo could not be read by cv2.imread: {PHOTO}")
    # yuv422 needs an even width; crop one column if the photo is odd.
    return np.ascontiguousarray(img[:, : img.shape[1] // 2 * 2])


@pytest.fixture(scope="module")
def gray(photo) -> np.ndarray:
    return cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)


def gray_bgr(g: np.ndarray) -> np.ndarray:
    return np.repeat(g[:, :, None], 3, axis=2)


def pack_rows(pixels: np.ndarray, padding: int) -> tuple[int, bytes]:
    """(step, data) for ``pixels`` (H x W[ x C], any dtype) with ``padding`` junk bytes per row."""
    h = pixels.shape[0]
    rows = np.ascontiguousarray(pixels).reshape(h, -1).view(np.uint8)
    out = np.full((h, rows.shape[1] + padding), PAD_BYTE, dtype=np.uint8)
    out[:, : rows.shape[1]] = rows
    return out.shape[1], out.tobytes()


def wire_pixels(photo: np.ndarray, encoding: str, bigendian: bool = False) -> np.ndarray:
    """The photo laid out as ``encoding`` would put it on the wire (built without the codec)."""
    if encoding in ("bgr8", "8UC3"):
        return photo
    if encoding == "rgb8":
        return photo[:, :, ::-1]
    alpha = np.full(photo.shape[:2] + (1,), 77, dtype=np.uint8)
    if encoding == "bgra8":
        return np.concatenate([photo, alpha], axis=2)
    if encoding == "rgba8":
        return np.concatenate([photo[:, :, ::-1], alpha], axis=2)
    g = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    if encoding in MONO8:
        return g
    if encoding in MONO16:
        # Random low byte: only the high byte may reach the output (>> 8).
        low = np.random.default_rng(1).integers(0, 256, g.shape, dtype=np.uint16)
        return ((g.astype(np.uint16) << 8) | low).astype(">u2" if bigendian else "<u2")
    if encoding == "yuv422":
        return cv2.cvtColor(photo, cv2.COLOR_BGR2YUV_UYVY)
    if encoding == "yuv422_yuy2":
        return cv2.cvtColor(photo, cv2.COLOR_BGR2YUV_YUYV)
    raise AssertionError(encoding)


def assert_bgr_result(out: np.ndarray, h: int, w: int) -> None:
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8
    assert out.shape == (h, w, 3)
    assert out.flags.c_contiguous
    assert out.flags.writeable


def test_supported_encodings_constant():
    assert isinstance(SUPPORTED_ENCODINGS, tuple)
    assert set(SUPPORTED_ENCODINGS) == set(LOSSLESS_COLOUR + MONO8 + MONO16 + YUV)
    assert set(SUPPORTED_COMPRESSED_FORMATS) == {"jpeg", "png"}


def test_module_does_not_import_ros():
    tree = ast.parse(MODULE_PATH.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"rclpy", "sensor_msgs", "cv_bridge", "rosbags"}, imported


# --------------------------------------------------------------------------- decode_image


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("encoding", LOSSLESS_COLOUR)
def test_decode_lossless_colour_exact(photo, encoding, padding):
    h, w = photo.shape[:2]
    step, data = pack_rows(wire_pixels(photo, encoding), padding)
    assert step == w * (4 if encoding in ("rgba8", "bgra8") else 3) + padding
    out = decode_image(encoding, h, w, step, False, data)
    assert_bgr_result(out, h, w)
    np.testing.assert_array_equal(out, photo)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("encoding", MONO8)
def test_decode_mono8_matches_cv2_gray(photo, gray, encoding, padding):
    h, w = photo.shape[:2]
    step, data = pack_rows(wire_pixels(photo, encoding), padding)
    out = decode_image(encoding, h, w, step, False, data)
    assert_bgr_result(out, h, w)
    np.testing.assert_array_equal(out, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))


@pytest.mark.parametrize("bigendian", [False, True], ids=["le", "be"])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("encoding", MONO16)
def test_decode_mono16_high_byte_both_endiannesses(photo, gray, encoding, padding, bigendian):
    h, w = photo.shape[:2]
    pixels = wire_pixels(photo, encoding, bigendian)
    step, data = pack_rows(pixels, padding)
    out = decode_image(encoding, h, w, step, bigendian, data)
    assert_bgr_result(out, h, w)
    np.testing.assert_array_equal(out, gray_bgr((pixels.astype(np.uint16) >> 8).astype(np.uint8)))
    np.testing.assert_array_equal(out, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))


def test_decode_mono16_endianness_flag_is_honoured():
    # 0x1234 little-endian is bytes 34 12; big-endian 12 34. Both must give 0x12.
    le = np.array([[0x1234, 0xABCD]], dtype="<u2").tobytes()
    be = np.array([[0x1234, 0xABCD]], dtype=">u2").tobytes()
    assert le != be
    for data, flag in ((le, False), (be, True)):
        out = decode_image("mono16", 1, 2, 4, flag, data)
        np.testing.assert_array_equal(out[0, :, 0], [0x12, 0xAB])
    # Reading with the wrong flag picks the other byte: the flag really matters.
    np.testing.assert_array_equal(decode_image("16UC1", 1, 2, 4, True, le)[0, :, 0], [0x34, 0xCD])


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("encoding", YUV)
def test_decode_yuv422_close_to_photo(photo, encoding, padding):
    h, w = photo.shape[:2]
    tight_step, tight = pack_rows(wire_pixels(photo, encoding), 0)
    step, data = pack_rows(wire_pixels(photo, encoding), padding)
    out = decode_image(encoding, h, w, step, False, data)
    assert_bgr_result(out, h, w)
    # Padding must not change anything.
    np.testing.assert_array_equal(out, decode_image(encoding, h, w, tight_step, False, tight))
    # Chroma subsampling loses a little colour detail only.
    err = np.abs(out.astype(np.int16) - photo.astype(np.int16))
    assert err.mean() < 1.5, err.mean()
    assert err.max() <= 16, err.max()


@pytest.mark.parametrize("encoding", YUV)
def test_decode_yuv422_byte_order_against_bt601(encoding):
    """Check UYVY / YUYV byte order against the BT.601 formula, independent of OpenCV."""
    h, w = 6, 10
    raw = np.random.default_rng(7).integers(16, 236, (h, w, 2), dtype=np.uint8)
    out = decode_image(encoding, h, w, w * 2, False, raw.tobytes())
    if encoding == "yuv422":  # U0 Y0 V0 Y1
        y, u, v = raw[:, :, 1], raw[:, 0::2, 0], raw[:, 1::2, 0]
    else:  # Y0 U0 Y1 V0
        y, u, v = raw[:, :, 0], raw[:, 0::2, 1], raw[:, 1::2, 1]
    y = y.astype(float) - 16
    u = np.repeat(u, 2, axis=1).astype(float) - 128
    v = np.repeat(v, 2, axis=1).astype(float) - 128
    b = 1.164 * y + 2.018 * u
    g = 1.164 * y - 0.813 * v - 0.391 * u
    r = 1.164 * y + 1.596 * v
    expected = np.clip(np.rint(np.stack([b, g, r], axis=2)), 0, 255)
    assert np.abs(out - expected).max() <= 1


@pytest.mark.parametrize(
    "wrap",
    [bytes, bytearray, memoryview, lambda b: array.array("B", b),
     lambda b: np.frombuffer(b, dtype=np.uint8).copy()],
    ids=["bytes", "bytearray", "memoryview", "array.array", "ndarray"])
def test_decode_accepts_all_buffer_types(photo, wrap):
    h, w = photo.shape[:2]
    step, data = pack_rows(photo[:, :, ::-1], 3)
    buf = wrap(data)
    out = decode_image("rgb8", h, w, step, False, buf)
    np.testing.assert_array_equal(out, photo)
    if isinstance(buf, (bytearray, np.ndarray)):
        # The result owns its memory: later changes to the message do not leak in.
        assert not np.shares_memory(out, np.frombuffer(buf, dtype=np.uint8))


def test_decode_strided_memoryview_and_wide_dtype_arrays():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    data = img.tobytes()
    spread = bytes(b for x in data for b in (x, 0))  # every other byte is junk
    np.testing.assert_array_equal(
        decode_image("bgr8", 2, 3, 9, False, memoryview(spread)[::2]), img)
    # A numpy array of another dtype is taken as its raw bytes.
    as_u16 = np.frombuffer(data, dtype=np.uint16)  # 18 bytes -> 9 uint16
    np.testing.assert_array_equal(decode_image("bgr8", 2, 3, 9, False, as_u16), img)


def test_decode_bgr8_copies_at_most_once():
    h, w = 480, 640
    frame = np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)
    data = frame.tobytes()
    nbytes = frame.nbytes
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = decode_image("bgr8", h, w, w * 3, False, data)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(out, frame)
    # One frame-sized allocation (the result) plus small bookkeeping; a second
    # copy anywhere on the way would push the peak to >= 2 frames.
    assert nbytes <= peak < 1.25 * nbytes, (peak, nbytes)
    assert not np.shares_memory(out, np.frombuffer(data, dtype=np.uint8))
    assert out.flags.owndata


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "mono16", "yuv422"])
def test_decode_padded_rows_single_output_allocation(encoding):
    h, w = 480, 640
    e = encode_image(np.zeros((h, w, 3), np.uint8), encoding, row_padding=32)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        decode_image(*e)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 1.25 * h * w * 3, peak


# --------------------------------------------------------------------------- errors


def test_error_unsupported_encoding():
    with pytest.raises(ImageDecodeError) as exc:
        decode_image("bayer_rggb8", 480, 640, 640, False, bytes(640 * 480))
    msg = str(exc.value)
    assert "unsupported encoding 'bayer_rggb8'" in msg
    assert "supported:" in msg and "rgb8" in msg and "yuv422_yuy2" in msg
    assert isinstance(exc.value, ValueError)


def test_error_step_too_small():
    with pytest.raises(ImageDecodeError,
                       match=r"step 1000 is smaller than width\*channels\*bytes = 1920"):
        decode_image("bgr8", 480, 640, 1000, False, bytes(1000 * 480))
    with pytest.raises(ImageDecodeError, match=r"step 1279 is smaller than .* = 1280"):
        decode_image("mono16", 480, 640, 1279, False, bytes(1279 * 480))


def test_error_data_length():
    with pytest.raises(ImageDecodeError,
                       match=r"data has 1000 bytes, expected step\*height = 921600"):
        decode_image("bgr8", 480, 640, 1920, False, bytes(1000))
    with pytest.raises(ImageDecodeError, match=r"data has 921601 bytes"):
        decode_image("bgr8", 480, 640, 1920, False, bytes(921601))


def test_error_zero_size():
    with pytest.raises(ImageDecodeError, match=r"zero-size image 0x480"):
        decode_image("bgr8", 480, 0, 0, False, b"")
    with pytest.raises(ImageDecodeError, match=r"zero-size image 640x0"):
        decode_image("rgb8", 0, 640, 1920, False, b"")


def test_error_odd_width_yuv_and_bad_data_type():
    with pytest.raises(ImageDecodeError, match=r"even width.*641"):
        decode_image("yuv422", 2, 641, 1282, False, bytes(2564))
    with pytest.raises(ImageDecodeError, match=r"bytes-like.*got list"):
        decode_image("mono8", 1, 2, 2, False, [1, 2])


def test_error_garbage_compressed():
    garbage = b"this is not a jpeg at all" * 10
    with pytest.raises(ImageDecodeError,
                       match=rf"could not decode jpeg data \({len(garbage)} bytes\)"):
        decode_compressed("jpeg", garbage)
    with pytest.raises(ImageDecodeError, match=r"could not decode png data \(0 bytes\)"):
        decode_compressed("png", b"")
    with pytest.raises(ImageDecodeError, match=r"unsupported compressed format 'h264'"):
        decode_compressed("h264", garbage)
    with pytest.raises(ImageDecodeError, match=r"compressedDepth"):
        decode_compressed("16UC1; compressedDepth png", garbage)


# --------------------------------------------------------------------------- decode_compressed


@pytest.mark.parametrize("fmt", ["jpeg", "bgr8; jpeg compressed bgr8",
                                 "rgb8; jpeg compressed bgr8", "JPEG", ""])
def test_decode_compressed_jpeg(photo, fmt):
    ok, buf = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    out = decode_compressed(fmt, buf.tobytes())
    assert_bgr_result(out, *photo.shape[:2])
    err = np.abs(out.astype(np.int16) - photo.astype(np.int16))
    assert err.mean() < 2.0, err.mean()
    # Same data as a numpy array (rosbags) gives the same pixels.
    np.testing.assert_array_equal(decode_compressed(fmt, buf.reshape(-1)), out)


@pytest.mark.parametrize("fmt", ["png", "bgr8; png compressed bgr8", "rgb8; png compressed bgr8"])
def test_decode_compressed_png_exact(photo, fmt):
    ok, buf = cv2.imencode(".png", photo)
    assert ok
    out = decode_compressed(fmt, array.array("B", buf.tobytes()))
    assert_bgr_result(out, *photo.shape[:2])
    np.testing.assert_array_equal(out, photo)


def test_decode_compressed_gray_and_16bit_png(gray):
    ok, buf = cv2.imencode(".png", gray)
    assert ok
    np.testing.assert_array_equal(decode_compressed("mono8; png compressed", buf), gray_bgr(gray))
    deep = (gray.astype(np.uint16) << 8) | 0x7F
    ok, buf = cv2.imencode(".png", deep)
    assert ok
    np.testing.assert_array_equal(decode_compressed("mono16; png compressed", buf), gray_bgr(gray))


# --------------------------------------------------------------------------- encoders


def test_encode_bgr8(photo):
    fields = encode_bgr8(photo)
    enc, h, w, step, data = fields
    assert (enc, h, w, step) == ("bgr8", photo.shape[0], photo.shape[1], photo.shape[1] * 3)
    assert type(data) is bytes and len(data) == step * h
    np.testing.assert_array_equal(decode_image(enc, h, w, step, False, data), photo)
    # Non-contiguous input (a crop) is serialised in C order.
    crop = photo[10:50, 20:90]
    enc, h, w, step, data = encode_bgr8(crop)
    np.testing.assert_array_equal(decode_image(enc, h, w, step, False, data), crop)
    with pytest.raises(ValueError):
        encode_bgr8(photo[:, :, 0])


def test_encode_rgb8(photo):
    rgb = np.ascontiguousarray(photo[:, :, ::-1])
    enc, h, w, step, data = encode_rgb8(rgb)
    assert enc == "rgb8" and step == w * 3 and type(data) is bytes
    assert data == rgb.tobytes()
    np.testing.assert_array_equal(decode_image(enc, h, w, step, False, data), photo)


@pytest.mark.parametrize("bigendian", [False, True], ids=["le", "be"])
@pytest.mark.parametrize("padding", [0, 3])
@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_encode_image_round_trip(photo, gray, encoding, padding, bigendian):
    e = encode_image(photo, encoding, row_padding=padding, is_bigendian=bigendian)
    assert isinstance(e, EncodedImage)
    assert e.encoding == encoding and e.is_bigendian is bigendian
    assert (e.height, e.width) == photo.shape[:2]
    assert type(e.data) is bytes and len(e.data) == e.step * e.height
    out = decode_image(*e)
    if encoding in MONO8 + MONO16:
        np.testing.assert_array_equal(out, gray_bgr(gray))
    elif encoding in YUV:
        assert np.abs(out.astype(np.int16) - photo.astype(np.int16)).mean() < 1.5
    else:
        np.testing.assert_array_equal(out, photo)
    # The wire bytes equal the independently built layout (padding aside).
    if encoding in MONO16:
        wire = (gray.astype(np.uint16) * 257).astype(">u2" if bigendian else "<u2")
    else:
        wire = wire_pixels(photo, encoding)
    step, data = pack_rows(wire, padding)
    rows = np.frombuffer(data, np.uint8).reshape(e.height, step)[:, : step - padding]
    got = np.frombuffer(e.data, np.uint8).reshape(e.height, e.step)[:, : e.step - padding]
    if encoding in ("rgba8", "bgra8"):  # alpha value is the encoder's choice
        rows = rows.reshape(e.height, e.width, 4)[:, :, :3]
        got = got.reshape(e.height, e.width, 4)[:, :, :3]
    np.testing.assert_array_equal(got, rows)


@pytest.mark.parametrize("bigendian", [False, True], ids=["le", "be"])
def test_encode_image_raw_16bit(bigendian):
    depth = np.random.default_rng(5).integers(0, 65536, (7, 9), dtype=np.uint16)
    e = encode_image(depth, "16UC1", row_padding=1, is_bigendian=bigendian)
    assert e.step == 9 * 2 + 1
    out = decode_image(*e)
    np.testing.assert_array_equal(out, gray_bgr((depth >> 8).astype(np.uint8)))


def test_encode_image_rejects_bad_input(photo):
    with pytest.raises(ImageDecodeError, match="unsupported encoding 'bayer_rggb8'"):
        encode_image(photo, "bayer_rggb8")
    with pytest.raises(ValueError, match="row_padding"):
        encode_image(photo, "bgr8", row_padding=-1)
    with pytest.raises(ValueError, match="even width"):
        encode_image(photo[:, :-1], "yuv422")


# --------------------------------------------------------------------------- cv_bridge


def test_agrees_with_cv_bridge(photo):
    try:
        from cv_bridge import CvBridge
        from sensor_msgs.msg import Image
    except ImportError:
        pytest.skip("cv_bridge not installed")
    bridge = CvBridge()
    small = np.ascontiguousarray(photo[:120, :160])
    for encoding in SUPPORTED_ENCODINGS:
        for padding, bigendian in ((0, False), (8, False), (8, True)):
            e = encode_image(small, encoding, row_padding=padding, is_bigendian=bigendian)
            msg = Image(encoding=e.encoding, height=e.height, width=e.width, step=e.step,
                        is_bigendian=e.is_bigendian, data=e.data)
            ours = decode_image(msg.encoding, msg.height, msg.width, msg.step,
                                msg.is_bigendian, msg.data)
            theirs = bridge.imgmsg_to_cv2(msg, "bgr8")
            assert theirs.shape == ours.shape, encoding
            # 16 -> 8 bit: cv_bridge scales by 255/65535, we take the high byte.
            tol = 1 if encoding in MONO16 else 0
            diff = np.abs(theirs.astype(np.int16) - ours.astype(np.int16)).max()
            assert diff <= tol, (encoding, padding, bigendian, diff)
