"""Model registry: the benchmark's image classifiers and the input transform each expects.

``input_transform`` follows the original benchmark: the CNN took pixels scaled to [0, 1]
(``"unit"``); the ResNet took pixels scaled to [0, 1] minus the per-pixel training mean
(``"unit_minus_mean"``, the sender's ``-s`` flag).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TRANSFORMS = ("unit", "unit_minus_mean")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable  # () -> keras.Model; imported lazily so the registry does not import Keras
    input_transform: str


def _build_cnn():
    from iotbench.models.cnn import build_cnn

    return build_cnn()


def _build_resnet20():
    from iotbench.models.resnet20 import build_resnet20

    return build_resnet20()


MODELS: dict[str, ModelSpec] = {
    "cnn": ModelSpec("cnn", _build_cnn, "unit"),
    "resnet20": ModelSpec("resnet20", _build_resnet20, "unit_minus_mean"),
}


def get(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def preprocess(images, transform: str) -> np.ndarray:
    """uint8 (or float in [0, 255]) HWC images -> float32 input for a model with ``transform``."""
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown input transform {transform!r}; known: {', '.join(TRANSFORMS)}")
    x = np.asarray(images, dtype=np.float32) / np.float32(255.0)
    if transform == "unit_minus_mean":
        from iotbench.data import cifar10

        x = x - cifar10.pixel_mean().astype(np.float32)
    return x
