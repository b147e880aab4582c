"""CIFAR-10's binary distribution (``cifar-10-batches-bin``), written from the canonical Python pickles.

The original JVM sender read ``cifar-10-batches-bin/test_batch.bin``: records of one label byte and
3,072 pixel bytes as three 32x32 planes (R, G, B).  That archive is a second download of the same
images; we derive the file from the pickles instead (the same bytes in the same order), so that the
JVM and the Python senders send identical streams and nothing is fetched at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from iotbench.data import cifar10

FOLDER_NAME = "cifar-10-batches-bin"
TEST_FILE = "test_batch.bin"
RECORD_SIZE = 1 + 32 * 32 * 3


def encode(images: np.ndarray, labels: np.ndarray) -> bytes:
    """uint8 (N, 32, 32, 3) HWC images and labels -> the binary records (label, R plane, G plane, B plane)."""
    planes = np.ascontiguousarray(np.asarray(images, np.uint8).transpose(0, 3, 1, 2)).reshape(len(images), -1)
    return np.concatenate([np.asarray(labels, np.uint8).reshape(-1, 1), planes], axis=1).tobytes()


def decode(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode`: (images uint8 (N, 32, 32, 3), labels uint8 (N,))."""
    if len(data) % RECORD_SIZE:
        raise ValueError(f"{len(data)} bytes is not a whole number of {RECORD_SIZE}-byte CIFAR-10 records")
    rec = np.frombuffer(data, np.uint8).reshape(-1, RECORD_SIZE)
    return np.ascontiguousarray(rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), rec[:, 0].copy()


def find_existing() -> Path | None:
    """A ``cifar-10-batches-bin`` folder the user already has, next to the pickles or in the caches."""
    for root in cifar10.candidate_roots():
        for folder in (root / FOLDER_NAME, root):
            if folder.name == FOLDER_NAME and (folder / TEST_FILE).is_file():
                return folder
    return None


def test_folder(cache: Path | None = None) -> Path:
    """A folder holding ``test_batch.bin``: an existing one, else written once into the cache from the pickles."""
    if existing := find_existing():
        return existing
    folder = (cache or cifar10.cache_dir()) / FOLDER_NAME
    target = folder / TEST_FILE
    if not target.is_file():
        split = cifar10.load("test")
        folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(encode(split.images, split.labels))
        tmp.replace(target)
    return folder
