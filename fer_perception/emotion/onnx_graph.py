"""The emotion network as an ONNX graph, and ONNX Runtime sessions to run one.

Shared by the ``onnxruntime`` classifier backends and by ``fer-quantize``, so
the graph that is quantized is the graph the float backend runs, and the
int8 backend finds and checks the graph ``fer-quantize`` wrote.
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import onnxruntime
import torch
from torch import nn

INPUT_NAME = "faces"
OUTPUT_NAME = "logits"
SOURCE_HASH_KEY = "fer_perception.source_sha256"
"""Metadata key of a quantized graph: SHA-256 of the model file (``.pt``) it was made from."""


def quantized_model_path(model_path: str | os.PathLike[str]) -> Path:
    """Where the int8 graph of a model file lives: beside it, ``NAME.int8.onnx`` for ``NAME.pt``."""
    return Path(model_path).with_suffix(".int8.onnx")


def file_sha256(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def export_onnx(network: nn.Module, input_size: int) -> bytes:
    """The network (eval mode) as a serialised ONNX graph: (N, 1, S, S) normalised faces in, (N, C) logits out,
    with a variable batch size."""
    graph = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated in torch 2.13
        torch.onnx.export(network.eval(), torch.zeros(1, 1, input_size, input_size), graph, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, dynamo=False)
    return graph.getvalue()


def single_thread_session(model: bytes | str | os.PathLike[str]) -> onnxruntime.InferenceSession:
    """A CPU session of a serialised graph or graph file on one intra-op and one inter-op thread (one core per
    node: with another process holding a core, more threads make the tail latency far worse)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else os.fspath(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
