"""The shipped emotion model on real face-front-end crops: loading, the live-crop mapping, batching, backends,
and the shipped int8 graph (agreement with the float model, reproducibility, refusal of a foreign graph)."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from conftest import REPO, data_dir, media_path
from fer_perception.emotion.checkpoint import ModelLoadError, ModelSpec, load_model, save_model
from fer_perception.emotion.classifier import BACKENDS, EmotionClassifier
from fer_perception.emotion.dataset import load_npz
from fer_perception.emotion.onnx_graph import SOURCE_HASH_KEY, quantized_model_path
from fer_perception.emotion.quantize import main as quantize_main
from fer_perception.emotion.labels import EMOTIONS
from fer_perception.emotion.preprocess import crop_to_model_input, fer_window
from fer_perception.face.front_end import FaceFrontEnd, FaceFrontEndConfig

MODEL = REPO / "models" / "emotion_fer2013.pt"


@pytest.fixture(scope="module")
def model_path() -> Path:
    if not MODEL.is_file():
        pytest.fail(f"shipped emotion model missing: {MODEL}")
    return MODEL


def _crops(name: str) -> list[np.ndarray]:
    """Aligned crops of every face the front end confirms in one photo of ``$FER_DATA_DIR/media``."""
    image = cv2.cvtColor(cv2.imread(str(media_path(name))), cv2.COLOR_BGR2RGB)
    front_end = FaceFrontEnd(FaceFrontEndConfig(min_hits=1))
    try:
        frame = front_end.process(image, 0)
        return [front_end.crop(image, face) for face in frame.faces]
    finally:
        front_end.close()


@pytest.fixture(scope="module")
def smiling_crop() -> np.ndarray:
    crops = _crops("single_face.jpg")
    assert len(crops) == 1
    return crops[0]


def test_shipped_model_loads_weights_only_with_metadata(model_path: Path) -> None:
    content = torch.load(model_path, map_location="cpu", weights_only=True)
    spec = content["spec"]
    assert spec["labels"] == list(EMOTIONS)
    assert (spec["input_size"], spec["color"]) == (48, "gray")
    assert 0 < spec["mean"] < 1 and 0 < spec["std"] < 1
    assert model_path.stat().st_size <= 20 * 1024 * 1024


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_smiling_face_is_happy(model_path: Path, smiling_crop: np.ndarray, backend: str) -> None:
    classifier = EmotionClassifier(model_path, backend=backend)
    probabilities = classifier.predict([smiling_crop])
    assert probabilities.shape == (1, len(EMOTIONS))
    assert np.isclose(probabilities.sum(), 1.0, atol=1e-5)
    assert classifier.labels[int(probabilities.argmax())] == "happy", dict(zip(EMOTIONS, probabilities[0].round(3)))
    assert torch.get_num_threads() == 1


def test_batch_equals_per_face_and_backends_agree(model_path: Path) -> None:
    crops = _crops("multi_face.jpg")
    assert len(crops) >= 3
    classifier = EmotionClassifier(model_path)
    batch = classifier.predict(crops)
    single = np.concatenate([classifier.predict([crop]) for crop in crops])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    for other in set(BACKENDS) - {"onnxruntime", "onnxruntime_int8"}:
        np.testing.assert_allclose(EmotionClassifier(model_path, backend=other).predict(crops), batch, atol=1e-4,
                                   err_msg=f"{other} differs from onnxruntime")
    quantized = EmotionClassifier(model_path, backend="onnxruntime_int8")
    np.testing.assert_allclose(quantized.predict(crops),
                               np.concatenate([quantized.predict([crop]) for crop in crops]), atol=1e-5)
    assert classifier.predict([]).shape == (0, len(EMOTIONS))


@pytest.mark.parametrize("backend", ["onnxruntime_int8", "torch_eager"])
def test_flip_averages_each_face_with_its_mirror_image(model_path: Path, backend: str) -> None:
    crops = _crops("multi_face.jpg")
    plain, flipped = EmotionClassifier(model_path, backend=backend), EmotionClassifier(model_path, backend, flip=True)
    faces = np.stack([crop_to_model_input(crop, 48) for crop in crops])
    mirrored = plain.predict_model_inputs(np.ascontiguousarray(faces[:, :, ::-1]))
    expected = (plain.predict(crops) + mirrored) / 2
    np.testing.assert_allclose(flipped.predict(crops), expected, atol=1e-4)
    assert np.abs(mirrored - plain.predict(crops)).max() > 1e-3  # a mirror image is another input
    assert flipped.predict([]).shape == (0, len(EMOTIONS))


def test_int8_graph_agrees_with_the_float_model(model_path: Path) -> None:
    """On 600 FER2013 test faces the quantized graph picks the float model's class almost always and its
    probabilities stay close (the accuracy of both is in the model card)."""
    path = data_dir() / "fer2013" / "fer2013.npz"
    if not path.is_file():
        pytest.fail(f"test data missing: {path} (set FER_DATA_DIR to the shared data folder)")
    faces = load_npz(path, "test").images[:600]
    exact = EmotionClassifier(model_path, backend="onnxruntime").predict_model_inputs(faces)
    quantized = EmotionClassifier(model_path, backend="onnxruntime_int8").predict_model_inputs(faces)
    assert (exact.argmax(1) == quantized.argmax(1)).mean() >= 0.95
    assert np.abs(exact - quantized).mean() <= 0.02


def test_shipped_int8_graph_is_what_fer_quantize_makes(model_path: Path, tmp_path: Path) -> None:
    path = data_dir() / "fer2013" / "fer2013.npz"
    if not path.is_file():
        pytest.fail(f"test data missing: {path} (set FER_DATA_DIR to the shared data folder)")
    shipped = quantized_model_path(model_path)
    assert shipped.is_file(), f"shipped int8 graph missing: {shipped} (make it with: fer-quantize {model_path})"
    remade = tmp_path / "remade.int8.onnx"
    assert quantize_main([str(model_path), "--data", str(path), "--out", str(remade)]) == 0
    expected, actual = onnx.load(str(remade)), onnx.load(str(shipped))
    assert [node.op_type for node in actual.graph.node] == [node.op_type for node in expected.graph.node]
    expected_weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in expected.graph.initializer}
    actual_weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in actual.graph.initializer}
    assert actual_weights.keys() == expected_weights.keys()
    for name, value in expected_weights.items():
        # Calibration runs the float graph, whose last bits may differ between CPUs' kernels.
        tolerance = {"atol": 1} if np.issubdtype(value.dtype, np.integer) else {"rtol": 1e-4}
        np.testing.assert_allclose(actual_weights[name].astype(np.float64), value.astype(np.float64),
                                   err_msg=name, **tolerance)
    assert ({prop.key: prop.value for prop in actual.metadata_props}[SOURCE_HASH_KEY]
            == hashlib.sha256(model_path.read_bytes()).hexdigest())


def test_int8_graph_missing_damaged_or_of_another_model_is_named(model_path: Path, tmp_path: Path) -> None:
    network, spec = load_model(model_path)
    other = tmp_path / "other.pt"
    save_model(other, network, ModelSpec(**{**spec.__dict__, "training": {"note": "a different file"}}))
    with pytest.raises(ModelLoadError, match=r"other\.int8\.onnx.*fer-quantize"):
        EmotionClassifier(other, backend="onnxruntime_int8")
    shutil.copy(quantized_model_path(model_path), quantized_model_path(other))
    with pytest.raises(ModelLoadError, match="was not made from"):
        EmotionClassifier(other, backend="onnxruntime_int8")
    quantized_model_path(other).write_bytes(b"not a graph")
    with pytest.raises(ModelLoadError, match=r"cannot load.*other\.int8\.onnx"):
        EmotionClassifier(other, backend="onnxruntime_int8")


def test_unknown_backend_lists_choices(model_path: Path) -> None:
    with pytest.raises(ValueError, match="onnxruntime.*onnxruntime_int8.*torch.*torch_eager"):
        EmotionClassifier(model_path, backend="tensorrt")


def test_missing_model_names_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.pt"
    with pytest.raises(ModelLoadError, match="absent.pt"):
        EmotionClassifier(path)


def test_live_crop_window_matches_fer_framing(smiling_crop: np.ndarray) -> None:
    assert fer_window(112) == (8, 6, 97)
    face = crop_to_model_input(smiling_crop)
    assert face.shape == (48, 48) and face.dtype == np.uint8
    # A gray crop gives the same input as the RGB one it came from.
    np.testing.assert_array_equal(crop_to_model_input(cv2.cvtColor(smiling_crop, cv2.COLOR_RGB2GRAY)), face)
    with pytest.raises(ValueError, match="square"):
        crop_to_model_input(smiling_crop[:, :100])
