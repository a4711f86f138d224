"""MNIST for the course: where the four files are, their checks, the splits as datasets, and `load_data`.

`load_data` gives one of two input pipelines with the same batches in distribution (float32 (B, 1, 28, 28), int64
labels): "fast" (default), the in-memory loader with batched augmentation (loader.py), or "torchvision", the
original project's per-image PIL transforms in a DataLoader, kept as the reference (evidence/bench.py measures
against it) and as the place to add your own torchvision transforms.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from config import AUGMENTATION, TrainConfig
from loader import CROP_PROB, CROP_SIZE, ROTATION_DEG, TensorLoader
from model import MEAN, STD, normalize
from pens import IMAGE_SIZE

DATA_ENV = "MNIST_DATA_DIR"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"  # git-ignored; downloads land here
FILES = {  # name -> (IDX magic number, item shape); counts are read from each file's header
    "train-images-idx3-ubyte": (2051, (28, 28)),
    "train-labels-idx1-ubyte": (2049, ()),
    "t10k-images-idx3-ubyte": (2051, (28, 28)),
    "t10k-labels-idx1-ubyte": (2049, ()),
}


class MNISTNotFoundError(FileNotFoundError):
    """MNIST files are missing and could not be downloaded."""


class CorruptMNISTError(ValueError):
    """An MNIST IDX file is truncated or is not an IDX file."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The MNIST root: the argument, else $MNIST_DATA_DIR, else ./data beside this file."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR
    return Path(data_dir).expanduser().resolve()


def check_idx_file(path: Path) -> int:
    """The item count of `path`; CorruptMNISTError unless it is a complete IDX file of the kind its name says."""
    magic, shape = FILES[path.name]
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(8)
    if len(header) < 8 or struct.unpack(">I", header[:4])[0] != magic:
        raise CorruptMNISTError(
            f"{path} is not an MNIST IDX file (expected magic number {magic}). "
            f"Delete it and download or copy it again."
        )
    count = struct.unpack(">I", header[4:8])[0]
    expected = 8 + 4 * len(shape) + count * math.prod(shape)
    if size != expected:
        raise CorruptMNISTError(
            f"{path} is truncated or corrupt: its header announces {count} items, i.e. {expected} bytes, "
            f"but the file has {size} bytes. Delete it and download or copy it again."
        )
    return count


SPLIT_SIZES = {"train": 60_000, "t10k": 10_000}  # items in each standard MNIST split, images and labels alike


def _candidates(root: Path) -> list[Path]:
    # <root>/MNIST/raw as torchvision lays it out, or a folder that holds the four files itself.
    return [root / "MNIST" / "raw", root]


def _check_split_sizes(raw: Path, counts: dict[str, int]) -> None:
    for split, expected in SPLIT_SIZES.items():
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{split}-{kind}-ubyte"
            if counts[name] != expected:
                other = next((s for s, n in SPLIT_SIZES.items() if n == counts[name] and s != split), None)
                hint = f"; that is the size of the {other} split: the files look swapped" if other else ""
                raise CorruptMNISTError(
                    f"{raw / name} holds {counts[name]:,} items, but the {split} split has {expected:,}{hint}. "
                    f"Restore the original files (names as in {', '.join(FILES)})."
                )


def ensure_mnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Find (or download, if allowed) the four MNIST IDX files, check them; return the folder holding them.

    Looks in <root>/MNIST/raw, then <root> itself, where root is `data_dir`, else $MNIST_DATA_DIR, else ./data.
    A failed lookup or download leaves no new folders behind.
    """
    root = resolve_data_dir(data_dir)
    raw = next((d for d in _candidates(root) if all((d / name).is_file() for name in FILES)), None)
    reason = "Downloading was not allowed (download=False)."
    if raw is None and download:
        reason = "Downloading did not produce them."
        missing_dirs = [d for d in (root / "MNIST" / "raw", root / "MNIST", root, *root.parents) if not d.exists()]
        created = missing_dirs[-1] if missing_dirs else None  # the topmost folder a download would create
        try:  # torchvision skips files already present, so this only fetches what is missing
            from torchvision import datasets

            datasets.MNIST(str(root), train=True, download=True)
            datasets.MNIST(str(root), train=False, download=True)
            raw = root / "MNIST" / "raw"
        except Exception as exc:  # urllib/http/checksum errors: summarised below, not shown as a stack
            reason = f"Downloading failed ({type(exc).__name__}: {' '.join(str(exc).split())})."
            if created is not None:  # a mistyped path must not leave a tree of empty folders behind
                shutil.rmtree(created, ignore_errors=True)
    if raw is None:
        looked = _candidates(root)[0]
        missing = [name for name in FILES if not (looked / name).is_file()]
        raise MNISTNotFoundError(
            f"MNIST files not found in {looked} (nor in {root} itself): missing {', '.join(missing)} "
            f"(expected all of {', '.join(FILES)}, uncompressed). {reason} "
            f"Put the files there, or point ${DATA_ENV} (or data_dir=) at the folder that contains MNIST/raw/ "
            f"or at the folder holding the four files."
        )
    _check_split_sizes(raw, {name: check_idx_file(raw / name) for name in FILES})
    return raw


class MNIST(Dataset):
    """One MNIST split as a map-style dataset of (image, label) pairs, answering as torchvision's MNIST does.

    `.data` is the (N, 28, 28) uint8 images and `.targets` the (N,) int64 labels, as in torchvision. Without
    `transform`, an item's image is the test-time input: (1, 28, 28) float32, normalised. With one, the
    transform gets the PIL image, as with torchvision's MNIST. The fast loader augments whole batches itself,
    so its `.dataset` is this test-time view of the training images.
    """

    def __init__(self, data: torch.Tensor, targets: torch.Tensor, transform: Callable | None = None) -> None:
        self.data, self.targets, self.transform = data, targets, transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = self.data[i]
        if self.transform is not None:
            return self.transform(Image.fromarray(image.cpu().numpy())), int(self.targets[i])
        return normalize(image.float().div(255).unsqueeze(0)).cpu(), int(self.targets[i])

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All items at once, as the model reads them at test time: (normalised (N, 1, 28, 28) images, labels)."""
        return normalize(self.data.cpu().unsqueeze(1).float() / 255), self.targets.cpu()


def mnist_split(train: bool, data_dir: str | os.PathLike | None = None, download: bool = True,
                transform: Callable | None = None, subset: int | None = None) -> MNIST:
    """The training (60k) or test (10k) split as an MNIST dataset; `subset` keeps its first n images."""
    return _read_split(ensure_mnist(data_dir, download), train, transform, subset)


def read_idx(path: Path) -> torch.Tensor:
    """The items of an IDX file check_idx_file accepted: (N, 28, 28) uint8 images or (N,) int64 labels, as
    torchvision reads them (importing torchvision itself costs seconds of start-up the fast pipeline does not need)."""
    shape = FILES[path.name][1]
    items = torch.frombuffer(bytearray(path.read_bytes()[8 + 4 * len(shape):]), dtype=torch.uint8)
    return items.view(-1, *shape) if shape else items.long()


def _read_split(raw: Path, train: bool, transform: Callable | None, subset: int | None) -> MNIST:
    prefix = "train" if train else "t10k"
    return MNIST(*(read_idx(raw / f"{prefix}-{kind}-ubyte")[:subset] for kind in ("images-idx3", "labels-idx1")),
                 transform)


def validation_digits(holdout: int, data_dir: str | os.PathLike | None = None) -> MNIST:
    """The last `holdout` training digits: what load_data(holdout=...) leaves out, to choose a recipe on."""
    train = mnist_split(True, data_dir, download=False)
    return MNIST(train.data[-holdout:], train.targets[-holdout:])


def train_transforms():
    """The original project's per-image training transforms (PIL in, normalised tensor out): a Compose."""
    from torchvision import transforms

    return transforms.Compose([
        transforms.RandomApply([transforms.CenterCrop(CROP_SIZE)], p=CROP_PROB),
        transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)),
        transforms.RandomRotation((-ROTATION_DEG, ROTATION_DEG), fill=0),
        transforms.ToTensor(),
        transforms.Normalize((MEAN,), (STD,)),
    ])


def test_transforms():
    """The original project's test transforms: tensor and normalisation only."""
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; derive Python's RNG from it too.
    random.seed(torch.initial_seed() % 2**32)


def load_data(
    batch_size: int,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    pipeline: str = "fast",
    device: torch.device | str = "cpu",
    test_batch_size: int = 1000,
    num_workers: int = 0,
    download: bool = True,
    subset: int | None = None,
    holdout: int = 0,
    **augmentation: float,
) -> tuple:
    """Return (train_loader, test_loader) for MNIST: training data shuffled and augmented, test data not.

    pipeline: "fast" (in-memory tensors on `device`, batched augmentation) or "torchvision" (the
    original PIL transforms in a DataLoader with `num_workers` workers). `subset` keeps the first n
    images of each split (for quick runs and tests); `holdout` leaves the last n training images out of
    training (a validation set: `validation_digits`). `seed` fixes the order and the augmentation.
    `augmentation`: the fast pipeline's levers by name (config.AUGMENTATION: stroke_prob, shift, elastic, ...),
    each off unless given; every value is checked by config.TrainConfig.
    """
    unknown = set(augmentation) - set(AUGMENTATION)
    if unknown:
        raise TypeError(f"load_data() got unknown augmentation(s) {sorted(unknown)}: "
                        f"choose from {', '.join(AUGMENTATION)}")
    recipe = TrainConfig(batch_size=batch_size, data_dir=data_dir, seed=seed, pipeline=pipeline,
                         test_batch_size=test_batch_size, subset=subset, holdout=holdout,
                         **{**dict.fromkeys(AUGMENTATION, 0.0), **augmentation})
    raw = ensure_mnist(data_dir, download)  # found and checked once for both splits
    fast = pipeline == "fast"
    train_set = _read_split(raw, True, None if fast else train_transforms(), subset)
    if holdout:
        train_set = MNIST(train_set.data[:-holdout], train_set.targets[:-holdout], train_set.transform)
    test_set = _read_split(raw, False, None if fast else test_transforms(), subset)
    if fast:
        return (TensorLoader(train_set, batch_size, True, seed, device, recipe),
                TensorLoader(test_set, test_batch_size, False, seed, device))
    common = dict(num_workers=num_workers, pin_memory=torch.device(device).type == "cuda",
                  worker_init_fn=_seed_worker, persistent_workers=num_workers > 0)
    return (DataLoader(train_set, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed), **common),
            DataLoader(test_set, test_batch_size, shuffle=False, **common))
