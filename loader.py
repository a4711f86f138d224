"""The fast input pipeline: a DataLoader-like iterable over an MNIST split held in memory, augmenting whole batches.

The split lives in memory as one uint8 tensor; batches are gathered by indexing and augmented per sample in one
vectorised affine warp. No PIL, no worker processes, so on a 2-core laptop the cores train the model instead of
decoding images. The recipe's augmentation levers (config.AUGMENTATION) come in as one value, the TrainConfig.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

import augment
from checkpoint import write_atomically
from config import TrainConfig
from model import normalize
from pens import IMAGE_SIZE, PEN_RES, STROKE_LEVEL, centre_lines, redraw_strokes

ROTATION_DEG = 15.0  # augmentation: rotation drawn uniformly from [-15°, +15°]
CROP_PROB, CROP_SIZE = 0.1, 22  # augmentation: 10% of images centre-cropped to 22 px and resized to 28
CACHE_ENV = "S6_CACHE_DIR"  # where computed centre lines are kept; default $XDG_CACHE_HOME/s6 or ~/.cache/s6
CACHE_MIN = 5000  # digits: fewer are thinned in well under a second, not worth a file
LINES_VERSION = 1  # bump when pens.thin or pens.centre_lines changes what they compute


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


def keep_array(path: Path, array: np.ndarray) -> None:
    """Write `array` as a .npy file into the cache, atomically; a read-only cache costs a recomputation, not a run."""
    try:
        buffer = io.BytesIO()
        np.save(buffer, array)
        write_atomically(path, buffer.getvalue())
    except OSError as exc:
        print(f"note: could not keep {path} ({exc.strerror}); set ${CACHE_ENV}", file=sys.stderr)


def cached_centre_lines(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """pens.centre_lines of (N, 28, 28) uint8 digits, computed on `device` once per set of digits and kept on disk.

    Thinning the 60,000 training digits takes a while on a CPU (seconds on a GPU); later runs load the result. The
    file is named by a hash of the digits, the pen settings and, off the CPU, the device type (its bicubic
    upsampling may round otherwise), so other data, settings or devices never read a stale file.
    """
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
        keep_array(path, np.packbits(lines.cpu().numpy()))
        print(f"centre lines found in {time.perf_counter() - start:.1f} s", flush=True)
    return lines


class TensorLoader:
    """A DataLoader-like iterable over an MNIST dataset (`.data` uint8 images, `.targets` labels) held in memory.

    With a `recipe` (training), each batch is augmented on the fly by its levers: rotation and zoom always;
    `stroke_prob` of the digits redrawn with another pen; shifts of up to `shift` px and elastic bends of up to
    `elastic` px; Gaussian noise of up to `noise` (std, on [0, 1] pixels) on half the images; random erasing with
    probability `erase`; and `not_digits` x batch_size generated non-digits appended to each batch with label
    augment.NOT_A_DIGIT_LABEL, `not_digit_letters` of them hand-written letters and signs, `not_digit_printed`
    printed ones; a `low_res` share of all of them shrunk and enlarged back. Without one: test-time images.
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool, seed: int = 0, device: torch.device | str = "cpu",
                 recipe: TrainConfig | None = None) -> None:
        self.dataset = dataset  # what DataLoader users expect: len(), indexing, Subset(loader.dataset, ...)
        self.batch_size, self.shuffle, self.recipe = batch_size, shuffle, recipe
        self.device = torch.device(device)
        self.images = dataset.data.to(self.device)  # (N, 28, 28) uint8: 47 MB for the training split
        self.labels = dataset.targets.to(self.device)
        self.extra = round(recipe.not_digits * batch_size) if recipe else 0  # non-digits per batch
        # Centre lines are found once per loader (thinning is the slow part); pens are drawn per batch.
        self.lines = cached_centre_lines(dataset.data, self.device) if recipe and recipe.stroke_prob else None
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
        r = self.recipe
        if self.lines is not None:
            x, redrawn = redraw_strokes(x, self.lines[idx], r.stroke_prob, generator)
        if r is not None:
            if r.digit_printed:
                x = augment.printed_digits(x, labels, r.digit_printed, generator)
            x = augment_batch(x, generator, r.shift, r.elastic)
            if self.extra:
                others = augment.not_digits(x, self.extra, generator, r.not_digit_letters, r.not_digit_printed,
                                            r.not_digit_curves)
                x = torch.cat([x, others])
                labels = torch.cat([labels, labels.new_full((self.extra,), augment.NOT_A_DIGIT_LABEL)])
                redrawn = torch.cat([redrawn, redrawn.new_zeros(self.extra)])
            if r.low_res:
                x = augment.low_res(x, r.low_res, generator)
            if r.noise:
                x = augment.add_noise(x, r.noise, generator)
            if r.erase:
                x = augment.erase(x, r.erase, generator)
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
