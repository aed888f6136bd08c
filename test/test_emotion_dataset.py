"""FER2013 loading, the rare-class weights and the batch augmentation, on the real data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import data_dir
from fer_perception.emotion.dataset import (INPUT_SIZE, Augmentation, DatasetError, class_weights, load_npz,
                                            normalise)
from fer_perception.emotion.labels import EMOTIONS


@pytest.fixture(scope="module")
def fer_path() -> Path:
    path = data_dir() / "fer2013" / "fer2013.npz"
    if not path.is_file():
        pytest.fail(f"test data missing: {path} (set FER_DATA_DIR to the shared data folder)")
    return path


def test_official_splits(fer_path: Path) -> None:
    sizes = {split: len(load_npz(fer_path, split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 28709, "val": 3589, "test": 3589}
    val = load_npz(fer_path, "val")
    assert val.classes == EMOTIONS and val.images.shape[1:] == (INPUT_SIZE, INPUT_SIZE)
    with pytest.raises(DatasetError, match="fer2013.npz.*'holdout'"):
        load_npz(fer_path, "holdout")


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nothing.npz"):
        load_npz(tmp_path / "nothing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip archive")
    with pytest.raises(DatasetError, match="corrupt.npz"):
        load_npz(corrupt)
    partial = tmp_path / "partial.npz"
    np.savez(partial, images=np.zeros((2, 48, 48), np.uint8), labels=np.zeros(2, np.int8))
    with pytest.raises(DatasetError, match=r"partial.npz lacks.*classes"):
        load_npz(partial)


def test_disgust_weighs_most(fer_path: Path) -> None:
    labels = load_npz(fer_path, "train").labels
    weights = class_weights(labels, len(EMOTIONS))
    counts = np.bincount(labels, minlength=len(EMOTIONS))
    assert int(weights.argmax()) == EMOTIONS.index("disgust")
    assert int(weights.argmin()) == EMOTIONS.index("happy")
    assert weights[EMOTIONS.index("disgust")] / weights[EMOTIONS.index("happy")] == pytest.approx(
        np.sqrt(counts.max() / counts[EMOTIONS.index("disgust")]), rel=1e-5)
    assert float((weights.numpy() * counts).sum() / counts.sum()) == pytest.approx(1.0)


def test_augmentation_is_seeded_and_keeps_range(fer_path: Path) -> None:
    images = torch.from_numpy(load_npz(fer_path, "val").images[:64])
    first = Augmentation()(images, torch.Generator().manual_seed(3))
    again = Augmentation()(images, torch.Generator().manual_seed(3))
    other = Augmentation()(images, torch.Generator().manual_seed(4))
    assert first.shape == (64, INPUT_SIZE, INPUT_SIZE) and first.dtype == torch.float32
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert 0.0 <= float(first.min()) and float(first.max()) <= 1.0
    # Without any transform the faces come through unchanged.
    identity = Augmentation(max_rotation_deg=0.0, scale_range=(1.0, 1.0), max_shift=0.0, flip_probability=0.0,
                            brightness=0.0, contrast=0.0, erase_probability=0.0)
    unchanged = identity(images, torch.Generator().manual_seed(0))
    torch.testing.assert_close(unchanged, images.float() / 255.0, atol=1e-5, rtol=0)
    assert normalise(images, 0.5, 0.25).shape == (64, 1, INPUT_SIZE, INPUT_SIZE)
