"""MNIST loading: where the files are, two input pipelines, and a sample grid.

Two pipelines give the same batches in distribution (float32 (B, 1, 28, 28), int64 labels):
- "fast" (default): the whole split lives in memory as one uint8 tensor; batches are gathered by
  indexing and augmented per sample in one vectorised affine warp. No PIL, no worker processes, so on a
  2-core laptop the cores train the model instead of decoding images.
- "torchvision": the original project's per-image PIL transforms in a DataLoader. Kept as the
  reference (bench.py measures against it) and as the place to add your own torchvision transforms.

The fast pipeline can also redraw a share of the training digits along their centre lines with round pens
from a fine gel pen to a thick marker (`stroke_prob`): people's pens are not MNIST's pen.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms
from torchvision.datasets.mnist import read_image_file, read_label_file

MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel statistics, as in the original project
ROTATION_DEG = 15.0  # augmentation: rotation drawn uniformly from [-15°, +15°]
CROP_PROB, CROP_SIZE = 0.1, 22  # augmentation: 10% of images centre-cropped to 22 px and resized to 28
IMAGE_SIZE = 28
DIGIT_BOX = 20  # MNIST: the digit's longer side is scaled to 20 px inside the 28x28 field
# Redrawn strokes: people write with pens and markers, not MNIST's pen. A share of training digits is redrawn
# along its centre line with a round pen of random width, drawn at PEN_RES x the resolution for smooth edges.
MNIST_STROKE = 1.75  # px at the 20 px digit box: median stroke width of MNIST training digits (a test measures it)
PEN_WIDTHS = (0.4, 3.3)  # x MNIST_STROKE, drawn uniformly: from a fine gel pen to a thick marker
PEN_RES = 2
STROKE_LEVEL = 0.4  # ink coverage (0..1) above which an upscaled pixel is part of a stroke, for centre lines
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
    """One MNIST split as a map-style dataset of (image, label) pairs.

    Without `transform`, an image is the test-time input: (1, 28, 28) float32, normalised. With one, the
    transform gets the PIL image, as with torchvision's MNIST. The fast loader augments whole batches
    itself, so its `.dataset` is this test-time view of the training images.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable | None = None) -> None:
        self.images, self.labels, self.transform = images, labels, transform  # (N, 28, 28) uint8, (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = self.images[i]
        if self.transform is not None:
            return self.transform(Image.fromarray(image.cpu().numpy())), int(self.labels[i])
        return normalize(image.float().div(255).unsqueeze(0)).cpu(), int(self.labels[i])


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


def thin(mask: torch.Tensor) -> torch.Tensor:
    """Zhang-Suen thinning of a boolean (..., H, W) batch of images to one-pixel-wide centre lines."""
    img = mask.bool().reshape(-1, *mask.shape[-2:]).clone()
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p = F.pad(img, (1, 1, 1, 1))
            n = [p[:, :-2, 1:-1], p[:, :-2, 2:], p[:, 1:-1, 2:], p[:, 2:, 2:],  # N, NE, E, SE,
                 p[:, 2:, 1:-1], p[:, 2:, :-2], p[:, 1:-1, :-2], p[:, :-2, :-2]]  # S, SW, W, NW
            neighbours = sum(x.to(torch.int8) for x in n)
            transitions = sum((~n[i] & n[(i + 1) % 8]).to(torch.int8) for i in range(8))
            a, b = (n[0] & n[2] & n[4], n[2] & n[4] & n[6]) if step == 0 else (n[0] & n[2] & n[6], n[0] & n[4] & n[6])
            remove = img & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & ~a & ~b
            if remove.any():
                img &= ~remove
                changed = True
    return img.reshape(mask.shape)


def disc(radius: torch.Tensor | float) -> torch.Tensor:
    """Round pen tips: (..., k, k) float kernels of ones within `radius` px of the centre, k = 2 ceil(max) + 1."""
    radius = torch.as_tensor(radius, dtype=torch.float32)
    r = int(math.ceil(float(radius.max())))
    offsets = torch.arange(-r, r + 1, dtype=torch.float32, device=radius.device)
    dist2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
    return (dist2 <= radius[..., None, None] ** 2).float()


def pen_ink(lines: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Boolean centre lines (B, H, W) drawn with a round pen of `radius[i]` px each -> (B, H, W) ink in {0, 1}."""
    kernels = disc(radius)[:, None]  # (B, 1, k, k): one pen per image, applied as a grouped convolution
    ink = F.conv2d(lines.float()[None], kernels, padding=kernels.shape[-1] // 2, groups=len(lines))[0]
    return ink.gt(0).float()


def centre_lines(images: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 digits -> (N, 56, 56) boolean centre lines at PEN_RES times the resolution."""
    chunks = []
    for x in images.split(1000):  # bounded memory: thinning's temporaries are ~20 bytes a pixel
        big = F.interpolate(x[:, None].float().div(255), scale_factor=PEN_RES, mode="bicubic", align_corners=False)
        chunks.append(thin(big[:, 0] > STROKE_LEVEL))
    return torch.cat(chunks)


def draw_strokes(lines: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """Redraw centre lines (B, H, W) at PEN_RES with round pens `widths` x MNIST_STROKE wide -> (B, 1, 28, 28).

    Each digit is then framed as MNIST and predict.preprocess frame theirs: longer side DIGIT_BOX px,
    centre of mass at the field's centre, so a thick marker's digit is no bigger than a thin pen's.
    """
    b, h, w = lines.shape
    if b == 0:
        return lines.new_zeros((0, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.float32)
    ink = pen_ink(lines, widths.float() * MNIST_STROKE * PEN_RES / 2)
    rows, cols = ink.amax(2) > 0, ink.amax(1) > 0  # (B, H), (B, W)
    extent = lambda m: m.shape[1] - m.float().argmax(1) - m.flip(1).float().argmax(1)  # noqa: E731
    zoom = DIGIT_BOX * PEN_RES / torch.maximum(extent(rows), extent(cols)).clamp(min=1)
    mass = ink.sum((1, 2)).clamp(min=1)
    cy = (ink.sum(2) * torch.arange(h, device=ink.device)).sum(1) / mass
    cx = (ink.sum(1) * torch.arange(w, device=ink.device)).sum(1) / mass
    # affine_grid maps output to input in [-1, 1] coordinates: scale by 1/zoom around the centre of mass.
    size, zero = IMAGE_SIZE * PEN_RES, torch.zeros_like(zoom)
    theta = torch.stack([torch.stack([size / (w * zoom), zero, (2 * cx + 1) / w - 1], 1),
                         torch.stack([zero, size / (h * zoom), (2 * cy + 1) / h - 1], 1)], 1)
    grid = F.affine_grid(theta, [b, 1, size, size], align_corners=False)
    framed = F.grid_sample(ink[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    small = F.avg_pool2d(framed, PEN_RES)  # averaging back down anti-aliases the edges
    # Darkest ink to 1, as predict.preprocess stretches contrast: a fine pen's one-pixel line is ink, not grey.
    return (small / small.amax((1, 2, 3), keepdim=True).clamp(min=1e-6)).clamp(0, 1)


def redraw_strokes(x: torch.Tensor, lines: torch.Tensor, prob: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace a `prob` share of a (B, 1, 28, 28) batch by its digits' centre `lines` redrawn with other pens."""
    b = x.shape[0]
    chosen = torch.rand(b, generator=generator, device=x.device) < prob
    lo, hi = PEN_WIDTHS
    widths = lo + (hi - lo) * torch.rand(b, generator=generator, device=x.device)
    x = x.clone()
    x[chosen] = draw_strokes(lines[chosen], widths[chosen])
    return x


def augment_batch(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly rotate (±15°) and, with p=0.1, zoom by 28/22 each image of a (B, 1, H, W) batch in one warp.

    The same distribution as the torchvision pipeline's RandomApply(CenterCrop(22)) -> Resize(28) ->
    RandomRotation(15, fill=0): one affine matrix per sample, black outside the image.
    """
    b = x.shape[0]
    angle = (torch.rand(b, generator=generator, device=x.device) * 2 - 1) * math.radians(ROTATION_DEG)
    cropped = torch.rand(b, generator=generator, device=x.device) < CROP_PROB
    return affine_batch(x, angle, cropped)


def affine_batch(x: torch.Tensor, angle: torch.Tensor, cropped: torch.Tensor) -> torch.Tensor:
    """Rotate each image by `angle` (radians, counter-clockwise) and zoom the `cropped` ones by 28/22."""
    # grid_sample maps output coordinates to input ones, so a crop of 22 px is a scale of 22/28 there.
    scale = torch.where(cropped, CROP_SIZE / IMAGE_SIZE, 1.0).to(x.dtype)
    cos, sin = torch.cos(angle).to(x.dtype) * scale, torch.sin(angle).to(x.dtype) * scale
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class TensorLoader:
    """A DataLoader-like iterable over an MNIST dataset held in memory, augmenting whole batches on the fly."""

    def __init__(
        self,
        dataset: MNIST,
        batch_size: int,
        shuffle: bool,
        augment: bool,
        seed: int = 0,
        device: torch.device | str = "cpu",
        stroke_prob: float = 0.0,
    ) -> None:
        self.dataset = dataset  # what DataLoader users expect: len(), indexing, Subset(loader.dataset, ...)
        self.device = torch.device(device)
        self.images = dataset.images.to(self.device)  # (N, 28, 28) uint8: 47 MB for the training split
        self.labels = dataset.labels.to(self.device)
        self.batch_size, self.shuffle, self.augment, self.stroke_prob = batch_size, shuffle, augment, stroke_prob
        # Centre lines are found once (~20 s for the training split on 2 cores); pens are drawn per batch.
        self.lines = centre_lines(self.images) if augment and stroke_prob else None
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
            x = self.images[idx].unsqueeze(1).float().div_(255)
            if self.lines is not None:  # no draws when off: histories without redrawing are unchanged
                x = redraw_strokes(x, self.lines[idx], self.stroke_prob, self.generator)
            if self.augment:
                x = augment_batch(x, self.generator)
            yield normalize(x), self.labels[idx]


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
) -> tuple:
    """Return (train_loader, test_loader) for MNIST: training data shuffled and augmented, test data not.

    pipeline: "fast" (in-memory tensors on `device`, batched augmentation) or "torchvision" (the
    original PIL transforms in a DataLoader with `num_workers` workers). `subset` keeps the first n
    images of each split (for quick runs and tests). `seed` fixes the order and the augmentation.
    """
    if batch_size < 1 or test_batch_size < 1:
        raise ValueError(f"batch sizes must be positive integers, got {batch_size} and {test_batch_size}")
    if subset is not None and subset < 1:
        raise ValueError(f"subset must be a positive number of images or None, got {subset}")
    if pipeline not in ("fast", "torchvision"):
        raise ValueError(f"pipeline must be 'fast' or 'torchvision', got {pipeline!r}")
    if stroke_prob and pipeline != "fast":
        raise ValueError("stroke_prob (redrawn strokes) exists in the fast pipeline only; use pipeline='fast'")
    fast = pipeline == "fast"
    raw = ensure_mnist(data_dir, download)  # found and checked once for both splits
    train_set = _read_split(raw, True, None if fast else train_transforms(), subset)
    test_set = _read_split(raw, False, None if fast else test_transforms(), subset)
    if fast:
        train = TensorLoader(train_set, batch_size, True, True, seed, device, stroke_prob)
        test = TensorLoader(test_set, test_batch_size, False, False, seed, device)
        return train, test
    common = dict(num_workers=num_workers, pin_memory=torch.device(device).type == "cuda",
                  worker_init_fn=_seed_worker, persistent_workers=num_workers > 0)
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(train_set, batch_size, shuffle=True, generator=generator, **common)
    test = DataLoader(test_set, test_batch_size, shuffle=False, **common)
    return train, test


def image_grid(images: torch.Tensor, titles: list[str], ncols: int = 8, suptitle: str | None = None):
    """A Figure showing normalised (N, 1, 28, 28) `images` as digits, one title each, `ncols` per row."""
    from matplotlib.figure import Figure  # no pyplot: works headless and never leaks open figures

    nrows = max(1, math.ceil(len(titles) / ncols))
    fig = Figure(figsize=(1.3 * ncols, 1.5 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow((image[0].cpu() * STD + MEAN).numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_samples(loader, n: int = 24, ncols: int = 8):
    """A Figure with the first `n` images of one batch from `loader`, titled with their labels."""
    images, labels = next(iter(loader))
    return image_grid(images[:n], [str(int(y)) for y in labels[:n]], ncols)
