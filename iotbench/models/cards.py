"""Model cards: what is known about a model file, and the input transform it expects.

A card is the sidecar JSON next to the model (``models/NAME.json``, written by ``iotbench train`` and the
converters) or, for the original benchmark's files, which have none, its published figures
(:data:`LEGACY_CARDS`).  Every path that loads a model asks here for its transform (the edge engines, the
Spark engines, the converters) and the benchmarks for its accuracy, so one file is read one way.
"""

from __future__ import annotations

import json
from pathlib import Path

from iotbench.models import TRANSFORMS
from iotbench.report import log

#: Cards of the original benchmark's model files, which have no sidecar (figures from its README).
LEGACY_CARDS = {
    "cifar10_ResNet20v1_model_91470.h5": {"input_transform": "unit_minus_mean", "test_accuracy": 0.9147,
                                          "correct": 9147, "test_images": 10_000},
    "keras_cifar10_trained_model_78.h5": {"input_transform": "unit", "test_accuracy": 0.78},
}


def sidecar_path(model_path: Path) -> Path:
    """``models/resnet20.keras`` -> ``models/resnet20.json`` (a SavedModel dir: ``<dir>.json``)."""
    return model_path.with_suffix(".json") if model_path.suffix else model_path.with_name(model_path.name + ".json")


def read_sidecar(model_path: Path) -> dict:
    """The model card JSON written next to the model, or {} when there is none (legacy files)."""
    path = sidecar_path(model_path)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read model sidecar {path}: {err}") from None


def model_card(model_path: str | Path) -> dict:
    """What is known about a model file: its sidecar, else the original benchmark's published card, else {}."""
    path = Path(model_path)
    return read_sidecar(path) or dict(LEGACY_CARDS.get(path.name, {}))


def resolve_transform(model_path: Path, requested: str | None) -> tuple[str, str]:
    """``(transform, where it came from)``: an explicit request wins, then the model card, then "unit"."""
    sidecar = read_sidecar(model_path)
    card = (sidecar or LEGACY_CARDS.get(Path(model_path).name, {})).get("input_transform")
    where = sidecar_path(model_path).name if sidecar else "original benchmark's model card"
    if requested is not None:
        if requested not in TRANSFORMS:
            raise ValueError(f"unknown input transform {requested!r}; known: {', '.join(TRANSFORMS)}")
        if card and card != requested:
            log(f"Input transform {requested!r} overrides {card!r} from {where}")
        return requested, "option"
    if card:
        if card not in TRANSFORMS:
            raise ValueError(f"{model_path}: unknown input_transform {card!r} in {where}")
        return card, where
    return "unit", "default"


def model_transform(model_path: Path | str) -> str:
    """The input transform a model expects: its card's (sidecar, else the original's published card), else unit."""
    return resolve_transform(Path(model_path), None)[0]
