"""CIFAR-10 loader: finds the canonical files wherever a user is likely to have them.

The original benchmark called ``keras.datasets.cifar10.load_data()``, which reads the
``cifar-10-batches-py`` pickles from ``~/.keras/datasets``.  We read the same canonical
pickles (from a folder or from the ``cifar-10-python.tar.gz`` archive) without importing
Keras, so the sender starts in a fraction of a second and works in environments that
have no TensorFlow at all.

Search order: ``$IOTBENCH_DATA`` (a folder that holds the data set, or the data set
itself), the Keras cache, the project's cache (``$XDG_CACHE_HOME/iotbench``), and only
then a download of the canonical archive, checked against its published md5.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

#: The scalar training-set statistics the original Spark programs printed and used.
SCALAR_MEAN = 120.70756512369792
SCALAR_STD = 64.15007589112122


class DatasetNotFoundError(FileNotFoundError):
    """Raised when CIFAR-10 is neither on disk nor downloadable; the message says where to put it."""


@dataclass(frozen=True)
class Split:
    """One split of CIFAR-10: ``images`` uint8 (N, 32, 32, 3) HWC RGB, ``labels`` uint8 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def candidate_roots() -> list[Path]:
    """Folders searched, in order, for the folder or the archive."""
    roots = []
    if env := os.environ.get("IOTBENCH_DATA"):
        roots += [Path(env), Path(env) / "cifar10"]
    roots.append(Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets")
    roots.append(cache_dir())
    return roots


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "iotbench"


def _source_in(root: Path) -> Path | None:
    """The data set folder or archive inside ``root`` (or ``root`` itself), if any."""
    if (root / TEST_BATCH).is_file() and root.name == FOLDER_NAME:
        return root
    if (root / FOLDER_NAME / TEST_BATCH).is_file():
        return root / FOLDER_NAME
    if (root / ARCHIVE_NAME).is_file():
        return root / ARCHIVE_NAME
    if root.suffixes[-2:] == [".tar", ".gz"] and root.is_file():
        return root
    return None


def locate(download: bool = True) -> Path:
    """Find CIFAR-10 on disk, downloading the canonical archive only as a last resort."""
    for root in candidate_roots():
        if found := _source_in(root):
            return found
    if download:
        try:
            return _download(cache_dir() / ARCHIVE_NAME)
        except (urllib.error.URLError, OSError) as err:
            reason = f"download from {URL} failed ({err})"
    else:
        reason = "download disabled"
    searched = "\n  ".join(str(r) for r in candidate_roots())
    raise DatasetNotFoundError(
        f"CIFAR-10 not found and {reason}.\nSearched:\n  {searched}\n"
        f"Put the '{FOLDER_NAME}' folder or '{ARCHIVE_NAME}' in one of these, "
        "or set IOTBENCH_DATA to the folder that holds it."
    )


def _download(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    print(f"Downloading CIFAR-10 from {URL} to {target}", file=sys.stderr)
    with urllib.request.urlopen(URL, timeout=30) as response, open(partial, "wb") as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)
    digest = hashlib.md5(partial.read_bytes()).hexdigest()
    if digest != ARCHIVE_MD5:
        partial.unlink()
        raise OSError(f"md5 mismatch: got {digest}, expected {ARCHIVE_MD5}")
    partial.rename(target)
    return target


def _decode_batch(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    d = pickle.loads(raw, encoding="bytes")
    data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(data), np.asarray(d[b"labels"], dtype=np.uint8)


def _read_members(source: Path, names: tuple[str, ...]) -> list[bytes]:
    if source.is_dir():
        return [(source / n).read_bytes() for n in names]
    with tarfile.open(source, "r:gz") as tar:
        return [tar.extractfile(f"{FOLDER_NAME}/{n}").read() for n in names]  # type: ignore[union-attr]


@functools.lru_cache(maxsize=4)
def load(split: str = "test", source: Path | None = None) -> Split:
    """Load ``"test"`` (10,000 images) or ``"train"`` (50,000 images) in canonical order."""
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train', not {split!r}")
    source = source or locate()
    names = (TEST_BATCH,) if split == "test" else TRAIN_BATCHES
    parts = [_decode_batch(raw) for raw in _read_members(source, names)]
    return Split(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


@functools.lru_cache(maxsize=1)
def pixel_mean() -> np.ndarray:
    """Per-pixel training-set mean of images scaled to [0, 1], float32 (32, 32, 3).

    Computed exactly as the original sender did (float32 scaling, then ``np.mean`` over
    axis 0 in float32), so that ``-s`` streams are byte-identical to the original's.
    The result is cached on disk: the computation reads all 50,000 training images.
    """
    cache = cache_dir() / "cifar10_pixel_mean_f32.npy"
    if cache.is_file():
        return np.load(cache)
    train = load("train").images.astype("float32") / 255
    mean = np.mean(train, axis=0)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, mean)
    except OSError:
        pass
    return mean


def scalar_stats() -> tuple[float, float]:
    """The scalar mean and std (0-255 scale) over all training pixels, as the original printed them."""
    train = load("train").images
    return float(train.mean(dtype=np.float64)), float(train.std(dtype=np.float64))
