"""Small file helpers shared by the model cards, the converters and the training script."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (model files are tens of MB): what a card records."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
