"""MNIST loading: where the files are, their checks, and two input pipelines.

Two pipelines give the same batches in distribution (float32 (B, 1, 28, 28), int64 labels):
- "fast" (default): the whole split lives in memory as one uint8 tensor; batches are gathered by
  indexing and augmented per sample in one vectorised affine warp. No PIL, no worker processes, so on a
  2-core laptop the cores train the model instead of decoding images.
- "torchvision": the original project's per-image PIL transforms in a DataLoader. Kept as the
  reference (evidence/bench.py measures against it) and as the place to add your own torchvision transforms.

The fast pipeline can also redraw a share of the training digits along their centre lines with round pens
from a fine gel pen to a thick marker (`stroke_prob`; the pen model is pens.py): people's pens are not MNIST's.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import shutil
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms
from torchvision.datasets.mnist import read_image_file, read_label_file

import augment
from pens import IMAGE_SIZE, PEN_RES, STROKE_LEVEL, centre_lines, redraw_strokes
from pens import draw_strokes as draw_strokes  # noqa: I001  (pen functions, importable from here as before)
from pens import pen_ink as pen_ink
from pens import thin as thin

MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel statistics, as in the original project
ROTATION_DEG = 15.0  # augmentation: rotation drawn uniformly from [-15°, +15°]
CROP_PROB, CROP_SIZE = 0.1, 22  # augmentation: 10% of images centre-cropped to 22 px and resized to 28
DATA_ENV = "MNIST_DATA_DIR"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"  # git-ignored; downloads land here
FILES = {  # name -> (IDX magic number, item shape); counts are read from each file's header
    "train-images-idx3-ubyte": (2051, (28, 28)),
    "train-labels-idx1-ubyte": (2049, ()),
    "t10k-images-idx3-ubyte": (2051, (28, 28)),
    "t10k-labels-idx1-ubyte": (2049, ()),
}


CACHE_ENV = "S6_CACHE_DIR"  # where computed centre lines are kept; default $XDG_CACHE_HOME/s6 or ~/.cache/s6
CACHE_MIN = 5000  # digits: fewer are thinned in well under a second, not worth a file
LINES_VERSION = 1  # bump when pens.thin or pens.centre_lines changes what they compute


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


def mnist_split(train: bool, data_dir: str | os.PathLike | None = None, download: bool = True,
                transform: Callable | None = None, subset: int | None = None) -> MNIST:
    """The training (60k) or test (10k) split as an MNIST dataset; `subset` keeps its first n images."""
    return _read_split(ensure_mnist(data_dir, download), train, transform, subset)


def _read_split(raw: Path, train: bool, transform: Callable | None, subset: int | None) -> MNIST:
    prefix = "train" if train else "t10k"
    images = read_image_file(str(raw / f"{prefix}-images-idx3-ubyte"))[:subset]
    labels = read_label_file(str(raw / f"{prefix}-labels-idx1-ubyte"))[:subset]
    return MNIST(images, labels, transform)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> the normalised values the model is trained on."""
    return (x - MEAN) / STD


def augment_batch(x: torch.Tensor, generator: torch.Generator | None = None, shift: float = 0.0,
                  elastic: float = 0.0) -> torch.Tensor:
    """Randomly rotate (±15°) and, with p=0.1, zoom by 28/22 each image of a (B, 1, H, W) batch in one warp;
    with `shift` also move it by up to that many pixels along each axis, with `elastic` bend it by up to
    about that many pixels (augment.py).

    Without shift and elastic, the same distribution as the torchvision pipeline's RandomApply(CenterCrop(22))
    -> Resize(28) -> RandomRotation(15, fill=0): one affine matrix per sample, black outside the image.
    """
    b = x.shape[0]
    angle = (torch.rand(b, generator=generator, device=x.device) * 2 - 1) * math.radians(ROTATION_DEG)
    cropped = torch.rand(b, generator=generator, device=x.device) < CROP_PROB
    moved = augment.random_shift(b, shift, generator, x.device) if shift else None
    field = augment.elastic_field(b, elastic, generator, x.device) if elastic else None
    return augment.warp(x, angle, _zoom(cropped, x.dtype), moved, field)


def _zoom(cropped: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # grid_sample maps output coordinates to input ones, so a crop of 22 px is a scale of 22/28 there.
    return torch.where(cropped, CROP_SIZE / IMAGE_SIZE, 1.0).to(dtype)


def affine_batch(x: torch.Tensor, angle: torch.Tensor, cropped: torch.Tensor) -> torch.Tensor:
    """Rotate each image by `angle` (radians, counter-clockwise) and zoom the `cropped` ones by 28/22."""
    return augment.warp(x, angle, _zoom(cropped, x.dtype))


def cache_dir() -> Path:
    """The folder for computed data: $S6_CACHE_DIR, else $XDG_CACHE_HOME/s6, else ~/.cache/s6."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "s6"


def cached_centre_lines(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """pens.centre_lines of (N, 28, 28) uint8 digits, computed on `device` once per set of digits and kept on disk.

    Thinning the 60,000 training digits takes a while on a CPU (seconds on a GPU); later runs load the result. The
    file is named by a hash of the digits, the pen settings and, off the CPU, the device type (its bicubic
    upsampling may round otherwise), so other data, settings or devices never read a stale file.
    """
    import numpy as np
    from tqdm.auto import tqdm

    key = hashlib.sha1(images.cpu().numpy().tobytes())
    key.update(f"{PEN_RES},{STROKE_LEVEL},{LINES_VERSION}".encode())
    device = torch.device(device)
    suffix = "" if device.type == "cpu" else f"-{device.type}"
    path = cache_dir() / f"centre-lines-{key.hexdigest()[:16]}{suffix}.npy"
    shape = (len(images), IMAGE_SIZE * PEN_RES, IMAGE_SIZE * PEN_RES)
    keep = len(images) >= CACHE_MIN
    if keep and path.is_file():
        try:
            bits = np.load(path)
            return torch.from_numpy(np.unpackbits(bits)[: math.prod(shape)].reshape(shape).astype(bool)).to(device)
        except (OSError, ValueError):
            pass  # unreadable or truncated: computed again below
    start = time.perf_counter()
    if keep:
        print(f"finding the centre lines of {len(images):,} digits for redrawn strokes (once; kept in {path.parent})",
              flush=True)
    bar = lambda chunks: tqdm(chunks, desc="centre lines", leave=False, disable=None, file=sys.stdout)  # noqa: E731
    lines = centre_lines(images.to(device), progress=bar if keep else iter)
    if keep:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "wb") as f:
                np.save(f, np.packbits(lines.cpu().numpy()))
            os.replace(tmp, path)
        except OSError as exc:  # a read-only home: next run computes them again
            print(f"note: could not keep the centre lines in {path.parent} ({exc.strerror}); set ${CACHE_ENV}",
                  file=sys.stderr)
        print(f"centre lines found in {time.perf_counter() - start:.1f} s", flush=True)
    return lines


class TensorLoader:
    """A DataLoader-like iterable over an MNIST dataset held in memory, augmenting whole batches on the fly.

    Augmentation (training only): rotation and zoom always; `stroke_prob` of the digits redrawn with another
    pen; random shifts of up to `shift` px and elastic bends of up to `elastic` px; Gaussian noise of up to
    `noise` (std, on [0, 1] pixels) on half the images; random erasing with probability `erase`; and
    `not_digits` x batch_size generated non-digits appended to each batch with label augment.NOT_A_DIGIT, a
    `not_digit_letters` share of them hand-written letters and signs and a `not_digit_printed` share printed ones;
    a `low_res` share of all of them shrunk and enlarged back.
    """

    def __init__(
        self,
        dataset: MNIST,
        batch_size: int,
        shuffle: bool,
        augment: bool,
        seed: int = 0,
        device: torch.device | str = "cpu",
        stroke_prob: float = 0.0,
        shift: float = 0.0,
        elastic: float = 0.0,
        noise: float = 0.0,
        erase: float = 0.0,
        not_digits: float = 0.0,
        not_digit_letters: float = 0.0,
        not_digit_printed: float = 0.0,
        not_digit_curves: float = 0.0,
        low_res: float = 0.0,
        digit_printed: float = 0.0,
    ) -> None:
        self.dataset = dataset  # what DataLoader users expect: len(), indexing, Subset(loader.dataset, ...)
        self.device = torch.device(device)
        self.images = dataset.data.to(self.device)  # (N, 28, 28) uint8: 47 MB for the training split
        self.labels = dataset.targets.to(self.device)
        self.batch_size, self.shuffle, self.augment, self.stroke_prob = batch_size, shuffle, augment, stroke_prob
        self.shift, self.elastic, self.noise, self.erase = shift, elastic, noise, erase
        self.extra = round(not_digits * batch_size) if augment else 0  # non-digits per batch
        self.letters, self.printed, self.curves = not_digit_letters, not_digit_printed, not_digit_curves
        self.low_res, self.digit_printed = low_res, digit_printed
        # Centre lines are found once per loader (thinning is the slow part); pens are drawn per batch.
        self.lines = cached_centre_lines(dataset.data, self.device) if augment and stroke_prob else None
        # One generator for order and augmentation, seeded once: epoch k of a run is the same every run.
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = (
            torch.randperm(n, generator=self.generator, device=self.device)
            if self.shuffle
            else torch.arange(n, device=self.device)
        )
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            x, labels, _ = self._batch(idx, self.generator)
            yield x, labels

    def _batch(self, idx: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The normalised, augmented images at `idx` (and any non-digits after them), their labels, and which
        were redrawn with another pen. Levers at 0 draw nothing, so histories without them are unchanged."""
        x = self.images[idx].unsqueeze(1).float().div_(255)
        labels = self.labels[idx]
        redrawn = torch.zeros(len(idx), dtype=torch.bool, device=self.device)
        if self.lines is not None:
            x, redrawn = redraw_strokes(x, self.lines[idx], self.stroke_prob, generator)
        if self.augment:
            if self.digit_printed:
                x = augment.printed_digits(x, labels, self.digit_printed, generator)
            x = augment_batch(x, generator, self.shift, self.elastic)
            if self.extra:
                others = augment.not_digits(x, self.extra, generator, self.letters, self.printed, self.curves)
                x = torch.cat([x, others])
                labels = torch.cat([labels, labels.new_full((self.extra,), augment.NOT_A_DIGIT)])
                redrawn = torch.cat([redrawn, redrawn.new_zeros(self.extra)])
            if self.low_res:
                x = augment.low_res(x, self.low_res, generator)
            if self.noise:
                x = augment.add_noise(x, self.noise, generator)
            if self.erase:
                x = augment.erase(x, self.erase, generator)
        return normalize(x), labels, redrawn

    def preview(self, n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`n` training images as the model sees them -> (images, labels, redrawn with another pen).

        Drawn with a generator of their own, so the loader's order and augmentation, and with them a
        training run's history, are the same whether or not you look.
        """
        generator = torch.Generator(device=self.device).manual_seed(seed)
        idx = torch.randperm(len(self.labels), generator=generator, device=self.device)[:n]
        x, labels, redrawn = self._batch(idx, generator)
        return x, labels, redrawn


# TensorLoader's levers beyond stroke_prob
AUGMENTATION = ("shift", "elastic", "noise", "erase", "not_digits", "not_digit_letters", "not_digit_printed",
                "not_digit_curves", "low_res", "digit_printed")


def validation_digits(holdout: int, data_dir: str | os.PathLike | None = None) -> MNIST:
    """The last `holdout` training digits: what load_data(holdout=...) leaves out, to choose a recipe on."""
    train = mnist_split(True, data_dir, download=False)
    return MNIST(train.data[-holdout:], train.targets[-holdout:])


def train_transforms() -> transforms.Compose:
    """The original project's per-image training transforms (PIL in, normalised tensor out)."""
    return transforms.Compose(
        [
            transforms.RandomApply([transforms.CenterCrop(CROP_SIZE)], p=CROP_PROB),
            transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)),
            transforms.RandomRotation((-ROTATION_DEG, ROTATION_DEG), fill=0),
            transforms.ToTensor(),
            transforms.Normalize((MEAN,), (STD,)),
        ]
    )


def test_transforms() -> transforms.Compose:
    """The original project's test transforms: tensor and normalisation only."""
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
    stroke_prob: float = 0.0,
    holdout: int = 0,
    **augmentation: float,
) -> tuple:
    """Return (train_loader, test_loader) for MNIST: training data shuffled and augmented, test data not.

    pipeline: "fast" (in-memory tensors on `device`, batched augmentation) or "torchvision" (the
    original PIL transforms in a DataLoader with `num_workers` workers). `subset` keeps the first n
    images of each split (for quick runs and tests); `holdout` leaves the last n training images out of
    training (a validation set: `validation_digits`). `seed` fixes the order and the augmentation.
    `augmentation`: the fast pipeline's other levers (shift, elastic, noise, erase, not_digits, not_digit_letters,
    not_digit_printed, not_digit_curves, low_res, digit_printed; TensorLoader).
    """
    unknown = set(augmentation) - set(AUGMENTATION)
    if unknown:
        raise TypeError(f"load_data() got unknown augmentation(s) {sorted(unknown)}: "
                        f"choose from {', '.join(AUGMENTATION)}")
    if any(augmentation.values()) and pipeline != "fast":
        raise ValueError(f"augmentation {augmentation} exists in the fast pipeline only: "
                         f"use pipeline='fast'")
    if batch_size < 1 or test_batch_size < 1:
        raise ValueError(f"batch sizes must be positive integers, got {batch_size} and {test_batch_size}")
    if subset is not None and subset < 1:
        raise ValueError(f"subset must be a positive number of images or None, got {subset}")
    if pipeline not in ("fast", "torchvision"):
        raise ValueError(f"pipeline must be 'fast' or 'torchvision', got {pipeline!r}")
    if stroke_prob and pipeline != "fast":
        raise ValueError(f"stroke_prob={stroke_prob} asks for redrawn strokes, which exist in the fast pipeline only: "
                         f"use pipeline='fast', or stroke_prob=0 with pipeline={pipeline!r}")
    fast = pipeline == "fast"
    raw = ensure_mnist(data_dir, download)  # found and checked once for both splits
    if holdout and not 0 <= holdout < (subset or SPLIT_SIZES["train"]):
        raise ValueError(f"holdout must leave training images, got {holdout} of {subset or SPLIT_SIZES['train']}")
    train_set = _read_split(raw, True, None if fast else train_transforms(), subset)
    if holdout:
        train_set = MNIST(train_set.data[:-holdout], train_set.targets[:-holdout], train_set.transform)
    test_set = _read_split(raw, False, None if fast else test_transforms(), subset)
    if fast:
        train = TensorLoader(train_set, batch_size, True, True, seed, device, stroke_prob, **augmentation)
        test = TensorLoader(test_set, test_batch_size, False, False, seed, device)
        return train, test
    common = dict(num_workers=num_workers, pin_memory=torch.device(device).type == "cuda",
                  worker_init_fn=_seed_worker, persistent_workers=num_workers > 0)
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(train_set, batch_size, shuffle=True, generator=generator, **common)
    test = DataLoader(test_set, test_batch_size, shuffle=False, **common)
    return train, test
