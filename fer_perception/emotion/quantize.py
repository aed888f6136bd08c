"""Making the int8 ONNX graph of a trained emotion model (CLI ``fer-quantize``).

Static post-training quantization with ONNX Runtime: weights int8 per output
channel, activations uint8 with ranges taken (min/max) from FER2013 training
faces run through the float graph. Weights use 7 of their 8 bits
(``reduce_range``): on x86 CPUs without VNNI (AVX2 only, as on many laptops)
ONNX Runtime multiplies uint8 by int8 with an instruction whose 16-bit sums
saturate, and full-range weights cost the shipped model 10 points of accuracy
there (58.9 % instead of 68.6 % on val); with 7-bit weights the int8 graph
stays within 0.1 point of the float model there (model card). Calibration
needs the data, which a robot does not have, so the quantized graph is made
once, next to the model it came from, and shipped in ``models/``; it records
that model's SHA-256, and the ``onnxruntime_int8`` backend refuses a graph made
from another file. The same command on the same files gives the same graph
(tested), so anyone can check the shipped one.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from fer_perception.emotion.checkpoint import ModelLoadError, load_model
from fer_perception.emotion.dataset import DatasetError, load_npz, normalise
from fer_perception.emotion.onnx_graph import (INPUT_NAME, SOURCE_HASH_KEY, export_onnx, file_sha256,
                                                quantized_model_path)
from fer_perception.paths import data_dir

CALIBRATION_KEY = "fer_perception.calibration"
SOURCE_FILE_KEY = "fer_perception.source_file"
CALIBRATION_SPLIT = "train"
CALIBRATION_FACES = 1024
CALIBRATION_BATCH = 64


class _FaceBatches(CalibrationDataReader):
    """Normalised calibration faces, a batch at a time, as ONNX Runtime's calibrator reads them."""

    def __init__(self, faces: np.ndarray, batch_size: int) -> None:
        self._batches = iter(np.array_split(faces, max(1, len(faces) // batch_size)))

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def quantize_model(model_path: Path, calibration_faces: np.ndarray, out_path: Path, description: str) -> None:
    """Write the int8 graph of model file ``model_path`` to ``out_path``, calibrated on uint8 (N, S, S) faces
    framed as the model's input; ``description`` says which faces (stored in the graph's metadata)."""
    network, spec = load_model(model_path)
    faces = normalise(torch.from_numpy(calibration_faces), spec.mean, spec.std).numpy()
    with tempfile.TemporaryDirectory() as work:
        float_graph, prepared = Path(work) / "float.onnx", Path(work) / "prepared.onnx"
        float_graph.write_bytes(export_onnx(network, spec.input_size))
        quant_pre_process(str(float_graph), str(prepared))
        quantize_static(str(prepared), str(out_path), _FaceBatches(faces, CALIBRATION_BATCH),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, reduce_range=True)
    graph = onnx.load(str(out_path))
    onnx.helper.set_model_props(graph, {SOURCE_HASH_KEY: file_sha256(model_path), CALIBRATION_KEY: description,
                                        SOURCE_FILE_KEY: Path(model_path).name})
    onnx.save(graph, str(out_path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fer-quantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="trained model file (.pt)")
    parser.add_argument("--data", type=Path, default=data_dir() / "fer2013" / "fer2013.npz",
                        help="FER2013-layout .npz with the calibration faces (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="output graph (default: MODEL with .int8.onnx)")
    args = parser.parse_args(argv)
    out = args.out or quantized_model_path(args.model)
    try:
        faces = load_npz(args.data, CALIBRATION_SPLIT).images[:CALIBRATION_FACES]
        description = f"{args.data.name} {CALIBRATION_SPLIT} split, first {len(faces)} faces, min/max"
        quantize_model(args.model, faces, out, description)
    except (DatasetError, ModelLoadError) as error:
        print(f"fer-quantize: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out} (calibrated on {description})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
