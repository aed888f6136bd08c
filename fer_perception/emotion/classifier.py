"""Inference API of the learned emotion classifier, as used by the expression stage.

:class:`EmotionClassifier` takes the face front end's eye-aligned crops of one
frame, maps each to the model's FER2013-framed 48 x 48 gray input (see
:mod:`fer_perception.emotion.preprocess`) and classifies all of them in one
batch with one intra-op thread, so the other core stays free for the rest of
the pipeline. How the network is run is a backend chosen by name from
:data:`BACKENDS`.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import nn

from fer_perception.emotion.checkpoint import ModelLoadError, load_model
from fer_perception.emotion.dataset import normalise
from fer_perception.emotion.onnx_graph import (INPUT_NAME, SOURCE_HASH_KEY, export_onnx, file_sha256,
                                                quantized_model_path, single_thread_session)
from fer_perception.emotion.preprocess import crop_to_model_input

Forward = Callable[[torch.Tensor], torch.Tensor]
"""A prepared network: normalised input batch in, logits out."""


def _torchscript_backend(network: nn.Module, input_size: int, model_path: Path) -> Forward:
    """Frozen, inference-optimised TorchScript: BatchNorm folded into the convolutions, conv+ReLU fused,
    no Python per layer. Measured 1.6x faster than eager at batch 1 and 5 on one thread. TorchScript is
    deprecated in torch 2.13, so its warnings are silenced here, and ``torch_eager`` is the fallback."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(network.eval())))


def _eager_backend(network: nn.Module, input_size: int, model_path: Path) -> Forward:
    """The network as it is, in eval mode: slower, but independent of TorchScript."""
    return network.eval()


def _session_forward(session: onnxruntime.InferenceSession) -> Forward:
    return lambda faces: torch.from_numpy(session.run(None, {INPUT_NAME: faces.numpy()})[0])


def _onnxruntime_backend(network: nn.Module, input_size: int, model_path: Path) -> Forward:
    """ONNX Runtime on one thread, from an ONNX graph exported in memory from the loaded torch weights at start-up
    (about 0.6 s), so the shipped ``.pt`` file is the only file it needs. About 2x faster than TorchScript at
    batch 1 on this project's CPU; same probabilities (tested)."""
    return _session_forward(single_thread_session(export_onnx(network, input_size)))


def _onnxruntime_int8_backend(network: nn.Module, input_size: int, model_path: Path) -> Forward:
    """ONNX Runtime on one thread with the int8 graph ``fer-quantize`` made from this model file and shipped
    beside it (:mod:`fer_perception.emotion.quantize`): about 3x faster than the float graph; its
    probabilities differ from the float model's by quantization error (model card: accuracy, agreement)."""
    path = quantized_model_path(model_path)
    if not path.is_file():
        raise ModelLoadError(f"quantized emotion model not found: {path} (make it with: fer-quantize {model_path})")
    try:
        session = single_thread_session(path)
    except Exception as error:  # ONNX Runtime raises its own exception types for damaged graphs
        raise ModelLoadError(f"cannot load quantized emotion model {path}: {error}") from error
    made_from = session.get_modelmeta().custom_metadata_map.get(SOURCE_HASH_KEY)
    if made_from != file_sha256(model_path):
        raise ModelLoadError(f"quantized emotion model {path} was not made from {model_path} (its source hash "
                             f"differs); re-make it with: fer-quantize {model_path}")
    return _session_forward(session)


BACKENDS: dict[str, Callable[[nn.Module, int, Path], Forward]] = {
    "onnxruntime": _onnxruntime_backend, "onnxruntime_int8": _onnxruntime_int8_backend,
    "torch": _torchscript_backend, "torch_eager": _eager_backend}
"""How the network can be run, by name: each prepares the network loaded from a model file for square gray
inputs of the given side."""


class EmotionClassifier:
    """Emotion probabilities of aligned face crops from a shipped model file.

    Construction sets torch to one intra-op thread for the whole process (the
    expression node's): at batch sizes of 1-5 faces a second thread gains
    little and competes with the face front end for the other core. Raises
    :class:`~fer_perception.emotion.checkpoint.ModelLoadError` naming the file
    when the model is missing, corrupt or not a gray-input model, and
    ``ValueError`` for an unknown backend. ``flip``: each face's probabilities are the mean of the face's and
    its mirror image's (flip test-time augmentation: one batch of twice the faces).
    """

    def __init__(self, model_path: str | os.PathLike[str], backend: str = "onnxruntime", flip: bool = False) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown emotion classifier backend {backend!r}; choose one of {sorted(BACKENDS)}")
        network, spec = load_model(model_path)
        if spec.color != "gray":
            raise ModelLoadError(f"emotion model file {model_path} expects {spec.color!r} input; only 'gray' is supported")
        torch.set_num_threads(1)
        self.labels: tuple[str, ...] = spec.labels
        """Class name of each output column (FER2013 order)."""
        self._input_size = spec.input_size
        self._mean, self._std = spec.mean, spec.std
        self._forward = BACKENDS[backend](network, spec.input_size, Path(model_path))
        self.backend = backend
        """The name of the backend the network runs on (:data:`BACKENDS`)."""
        self.flip = flip

    def predict(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, classes) float32 probabilities of N aligned square crops (RGB or gray uint8), one batch."""
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.predict_model_inputs(np.stack([crop_to_model_input(crop, self._input_size) for crop in crops]))

    def predict_model_inputs(self, faces: np.ndarray) -> np.ndarray:
        """(N, classes) float32 probabilities of faces already framed as the model's input: (N, S, S) gray uint8,
        as FER2013 stores them."""
        batch = np.concatenate([faces, faces[:, :, ::-1]]) if self.flip else faces
        with torch.inference_mode():
            logits = self._forward(normalise(torch.from_numpy(np.ascontiguousarray(batch)), self._mean, self._std))
        probabilities = torch.softmax(logits.float(), dim=1).numpy()
        return (probabilities[:len(faces)] + probabilities[len(faces):]) / 2 if self.flip else probabilities
