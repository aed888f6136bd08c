"""The shipped emotion model on real face-front-end crops: loading, the live-crop mapping, batching, backends."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO, media_path
from fer_perception.emotion.checkpoint import ModelLoadError
from fer_perception.emotion.classifier import BACKENDS, EmotionClassifier
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
    for other in set(BACKENDS) - {"onnxruntime"}:
        np.testing.assert_allclose(EmotionClassifier(model_path, backend=other).predict(crops), batch, atol=1e-4,
                                   err_msg=f"{other} differs from onnxruntime")
    assert classifier.predict([]).shape == (0, len(EMOTIONS))


def test_unknown_backend_lists_choices(model_path: Path) -> None:
    with pytest.raises(ValueError, match="onnxruntime.*torch.*torch_eager"):
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
