"""The learned AU network: a small CNN regressing FACS intensities from the aligned face crop.

The geometric estimator reads AUs off the mesh; a network trained on
AU-labelled faces (DISFA, BP4D) sees texture the mesh cannot (wrinkles,
furrows, cheek bulges). :class:`AUNet` is four stages of two 3x3
convolutions (the first of each with stride 2), then an average pool to a
3 x 3 grid and one linear layer. The grid keeps coarse position: with the
eyes at 0.40 of the crop height its rows roughly hold brows, eyes and nose,
and mouth and chin, which is where the AUs live. Outputs are ``5 *
sigmoid``, so intensities are always on the FACS 0-5 scale. At 96 x 96
grayscale it costs about 30 M multiply-adds, 1.5-2 ms per face on one CPU
thread (measured on the development machine, 112 x 112 RGB included).

:class:`InputSpec` and :func:`prepare_crop` / :func:`to_tensor` turn the
pipeline's RGB crop into the network's input the same way in training and
at run time.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

MAX_INTENSITY = 5.0
"""Top of the FACS intensity scale the outputs are mapped to."""
GRID = 3
"""Side of the pooled feature grid the head reads."""
DEFAULT_WIDTHS = (16, 32, 64, 128)
"""Channels of the four stages of a new :class:`AUNet`."""
DEFAULT_DROPOUT = 0.2


@dataclass(frozen=True)
class InputSpec:
    """The input a network expects: square side, 1 (gray) or 3 (RGB) channels, per-channel normalisation.

    Pixels are scaled to [0, 1], then normalised as ``(x - mean) / std``.
    """

    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"input size {self.size} is too small (at least 16 pixels)")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (gray) or 3 (RGB), got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean and std need one value per channel ({self.channels})")
        if min(self.std) <= 0.0:
            raise ValueError(f"std must be positive, got {self.std}")


def prepare_crop(crop_rgb: np.ndarray, size: int, channels: int) -> np.ndarray:
    """An H x W x 3 uint8 RGB crop resized to ``size`` square with ``channels`` (1: gray), uint8 S x S x C."""
    if crop_rgb.ndim != 3 or crop_rgb.shape[2] != 3 or crop_rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 RGB crop, got shape {crop_rgb.shape} {crop_rgb.dtype}")
    shrinking = min(crop_rgb.shape[:2]) > size
    resized = cv2.resize(crop_rgb, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if channels == 1:
        return cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)[:, :, None]
    return resized


def to_tensor(prepared: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """A batch of prepared crops (N x S x S x C uint8) as the network's normalised N x C x S x S float input."""
    batch = torch.from_numpy(np.ascontiguousarray(prepared)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return (batch - mean) / std


def _conv_bn_relu(inputs: int, outputs: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]


class AUNet(nn.Module):
    """Small CNN: normalised face crop in, ``num_aus`` intensities in [0, 5] out (see the module docstring)."""

    def __init__(self, num_aus: int, in_channels: int = 1, widths: Sequence[int] = DEFAULT_WIDTHS,
                 dropout: float = DEFAULT_DROPOUT) -> None:
        super().__init__()
        if num_aus < 1:
            raise ValueError("AUNet needs at least one AU output")
        layers: list[nn.Module] = []
        previous = in_channels
        for width in widths:
            layers += _conv_bn_relu(previous, width, 2) + _conv_bn_relu(width, width, 1)
            previous = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(GRID)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(previous * GRID * GRID, num_aus)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.flatten(self.pool(self.features(x)), 1)
        return MAX_INTENSITY * torch.sigmoid(self.head(self.dropout(pooled)))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"au_net": AUNet}
"""Network constructors by the name stored in AU checkpoints."""


def build_network(architecture: str, **kwargs: object) -> nn.Module:
    """A freshly initialised network of a registered architecture."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown AU network architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](**kwargs)
