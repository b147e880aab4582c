"""ImageNet validation folders: the original's ``DIR/val/<wnid>/*.JPEG`` layout, decoded once for a max-speed loop.

The original program used ``torchvision.datasets.ImageFolder``, which numbers classes by the folders that are
*present*; with a subset of the 1,000 classes (the shared sample has 200) that index is not the ImageNet-1k index
a pretrained model predicts.  We label every image with the index of its wnid in the standard sorted list of the
1,000 ImageNet-1k wnids (shipped as ``imagenet_synsets.txt``, so nothing depends on a data folder), which equals
ImageFolder's index only when all 1,000 folders are there.

Images are decoded with PIL and the standard evaluation transform (Resize 256, CenterCrop 224, ImageNet mean/std),
in ImageFolder's order (sorted folders, sorted files), so that the first N images are the ones the original used.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

#: The extensions ImageFolder accepts (torchvision.datasets.folder.IMG_EXTENSIONS), compared case-insensitively.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
RESIZE, CROP = 256, 224
_WNID = re.compile(r"^n\d{8}$")
#: How many unreadable files are named in the message (the rest are only counted).
KEEP_SAMPLES = 3


@functools.cache
def synsets() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k wnids in the standard (sorted) order: position = class index of pretrained models."""
    text = resources.files("iotbench.data").joinpath("imagenet_synsets.txt").read_text()
    wnids = tuple(text.split())
    if len(wnids) != 1000 or list(wnids) != sorted(set(wnids)):
        raise ValueError("iotbench/data/imagenet_synsets.txt must hold the 1,000 sorted ImageNet-1k wnids")
    return wnids


@functools.cache
def _index() -> dict[str, int]:
    return {wnid: i for i, wnid in enumerate(synsets())}


def class_index(wnid: str) -> int:
    """ImageNet-1k class index of ``wnid``; -1 for a folder that is not one of the 1,000 classes (not scored)."""
    return _index().get(wnid, -1)


def class_dir(path: str | Path) -> Path:
    """The folder holding the class folders: ``DIR/val`` as the original expected, else ``DIR`` itself.

    So ``imagenet-sample``, ``imagenet-sample/val`` and ``imagenet-sample/val256`` all work.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"ImageNet folder not found: {root}")
    for candidate in (root / "val", root):
        if candidate.is_dir() and any(_is_class_folder(p) for p in candidate.iterdir()):
            return candidate
    raise FileNotFoundError(f"no ImageNet class folders (<wnid>/ such as n01440764/) in {root} or {root / 'val'}")


def _is_class_folder(p: Path) -> bool:
    return p.is_dir() and bool(_WNID.match(p.name))


def list_images(folder: Path) -> list[tuple[Path, str]]:
    """``(file, wnid)`` in ImageFolder's order: sorted class folders, sorted files, image extensions only."""
    items = []
    for cls in sorted(p for p in folder.iterdir() if p.is_dir()):
        items += [(f, cls.name) for f in sorted(cls.iterdir()) if f.is_file() and f.suffix.lower() in IMG_EXTENSIONS]
    return items


def eval_transform():
    """The standard ImageNet evaluation transform (the original's, from pytorch/examples imagenet/main.py)."""
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(RESIZE),
        transforms.CenterCrop(CROP),
        transforms.ToTensor(),
        transforms.Normalize(mean=MEAN, std=STD),
    ])


@dataclass
class Sample:
    """Decoded images, float32 (N, 3, 224, 224) normalised, with ImageNet-1k ``targets`` (-1: not an ImageNet-1k wnid).

    ``found`` is how many image files the folder holds; ``skipped`` lists unreadable ones as ``(file, reason)``.
    """

    images: object  # torch.Tensor; typed loosely so that importing this module does not import torch
    targets: object
    wnids: list[str]
    folder: Path
    found: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skipped_count: int = 0

    def __len__(self) -> int:
        return len(self.wnids)

    @property
    def unscored(self) -> int:
        """Images whose folder is not one of the 1,000 ImageNet-1k wnids."""
        return sum(class_index(w) < 0 for w in self.wnids)


def load(path: str | Path, limit: int) -> Sample:
    """Decode the first ``limit`` readable images under ``path`` (see ``class_dir``); unreadable files are skipped
    and counted, never fatal unless nothing is readable."""
    import torch
    from PIL import Image, UnidentifiedImageError

    folder = class_dir(path)
    files = list_images(folder)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMG_EXTENSIONS)}) in the class folders of {folder}")
    transform = eval_transform()
    tensors, wnids, skipped, skipped_count = [], [], [], 0
    for file, wnid in files:
        if len(tensors) >= limit:
            break
        try:
            with Image.open(file) as img:
                tensors.append(transform(img.convert("RGB")))
            wnids.append(wnid)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            skipped_count += 1
            if len(skipped) < KEEP_SAMPLES:
                skipped.append((str(file), f"{type(err).__name__}: {err}"))
    if not tensors:
        raise ValueError(f"none of the {len(files)} image files in {folder} could be decoded "
                         f"(first: {skipped[0][0]}: {skipped[0][1]})")
    targets = torch.tensor([class_index(w) for w in wnids], dtype=torch.int64)
    return Sample(torch.stack(tensors), targets, wnids, folder, len(files), skipped, skipped_count)


def replicate(images, targets, batch: int):
    """Repeat ``images``/``targets`` cyclically to exactly ``batch`` rows (the folder holds fewer images)."""
    import torch

    index = torch.arange(batch) % len(images)
    return images[index], targets[index]


def skipped_line(sample: Sample) -> str | None:
    """One line naming the unreadable files (first few) and their count; None when every file decoded."""
    if not sample.skipped_count:
        return None
    first = "; ".join(f"{f}: {r}" for f, r in sample.skipped)
    return f"Skipped {sample.skipped_count} unreadable image files ({first})"
