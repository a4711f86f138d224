"""MNIST-C (Mu & Gilmer 2019), regenerated offline, and the evaluation of a checkpoint on it.

The benchmark: 15 corruptions of the 10,000 MNIST test digits, each at the severity the published
`corruptions.py` uses by default, stored as uint8 images and fed to the model as any MNIST image (/255,
normalised; no other preprocessing). Each function below follows the published definition, vectorised
over a batch; where this differs from the original code it says so in its docstring:
- the random draws come from one numpy Generator per corruption (seeded), not the global np.random, so the
  images are the published distribution, not the published files;
- motion blur is ImageMagick's MotionBlurImage kernel written out in numpy (no Wand/ImageMagick here);
- shear uses the matrix scikit-image's AffineTransform(shear=) built when MNIST-C was made
  ([[1, -sin s], [0, cos s]]; newer scikit-image uses tan s).

Never train on these images or use them to choose a recipe: MNIST-C measures robustness to corruptions
the model has not seen. `python -m evidence.mnist_c --checkpoint checkpoints/s6.pt` prints the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

CORRUPTIONS = ("shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate",
               "brightness", "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges")
VERSION = 2  # bump when a corruption below changes what it draws; names the cached files
SIZE = 28
CENTRE = 13.5  # the image centre the geometric corruptions keep fixed


def _gaussian(x: np.ndarray, sigma: float, columns: bool = True) -> np.ndarray:
    """skimage.filters.gaussian of each image of a (B, H, W) batch (mode 'nearest', truncate 4); with
    `columns=False` along the rows axis only, as gaussian(image, multichannel=True) did to a 2-D image."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x, sigma=(0, sigma, sigma if columns else 0), mode="nearest", truncate=4.0)


def affine_warp(x: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """skimage.transform.warp(x, inverse_map=matrix) for each image: output (col, row) reads the input at
    matrix @ (col, row, 1), bilinear, black outside. `matrix` is (B, 3, 3) or (3, 3)."""
    from scipy.ndimage import map_coordinates

    matrix = np.broadcast_to(matrix, (len(x), 3, 3))
    rows, cols = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    out = np.empty_like(x)
    for i, (image, m) in enumerate(zip(x, matrix)):
        src_col = m[0, 0] * cols + m[0, 1] * rows + m[0, 2]
        src_row = m[1, 0] * cols + m[1, 1] * rows + m[1, 2]
        out[i] = map_coordinates(image, [src_row, src_col], order=1, mode="constant", cval=0.0)
    return out


def centred(linear: np.ndarray) -> np.ndarray:
    """The 3x3 affine matrix of a 2x2 linear map that keeps the image centre (13.5, 13.5) fixed."""
    m = np.eye(3)
    m[:2, :2] = linear
    m[:2, 2] = CENTRE * (1 - linear.sum(axis=1))
    return m


def line_from_points(c0: float, r0: float, c1: float, r1: float) -> np.ndarray:
    """The published anti-aliased line: intensity log(1 - d/2.3) + 1 at vertical distance d, between
    columns floor(c0) and ceil(c1)."""
    if c1 == c0:
        return np.zeros((SIZE, SIZE))
    cc, rr = np.meshgrid(np.arange(SIZE, dtype=np.float64), np.arange(SIZE, dtype=np.float64), sparse=True)
    dist = np.clip(np.abs(rr - ((r1 - r0) / (c1 - c0) * (cc - c0) + r0)), 0, 2.3 - 1e-10)
    line = np.clip(np.log(1 - dist / 2.3) + 1, 0, 1)
    line[:, : int(np.floor(c0))] = 0
    line[:, int(np.ceil(c1)):] = 0
    return line


def plasma_fractal(n: int, rng: np.random.Generator, mapsize: int = 256, wibbledecay: float = 3) -> np.ndarray:
    """`n` diamond-square height maps in [0, 1] (the published fog's, noise amplitude wibble**2 included)."""
    maps = np.zeros((n, mapsize, mapsize))
    step, wibble = mapsize, 100.0

    def wibbled_mean(a):
        return a / 4 + wibble * rng.uniform(-wibble, wibble, a.shape)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0:mapsize:step, 0:mapsize:step]
        squares = corners + np.roll(corners, -1, axis=1)
        squares = squares + np.roll(squares, -1, axis=2)
        maps[:, half:mapsize:step, half:mapsize:step] = wibbled_mean(squares)
        centres = maps[:, half:mapsize:step, half:mapsize:step]
        corners = maps[:, 0:mapsize:step, 0:mapsize:step]
        diamonds = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        maps[:, 0:mapsize:step, half:mapsize:step] = wibbled_mean(diamonds)
        diamonds = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        maps[:, half:mapsize:step, 0:mapsize:step] = wibbled_mean(diamonds)
        step //= 2
        wibble /= wibbledecay
    maps -= maps.min(axis=(1, 2), keepdims=True)
    return maps / maps.max(axis=(1, 2), keepdims=True)


def motion_kernel(radius: float = 10, sigma: float = 3) -> np.ndarray:
    """ImageMagick's one-sided motion-blur weights: exp(-i^2 / 2 sigma^2) for i = 0 .. 2 radius, normalised."""
    i = np.arange(2 * int(np.ceil(radius)) + 1, dtype=np.float64)
    k = np.exp(-(i**2) / (2 * sigma**2))
    return k / k.sum()


def motion_offsets(width: int, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """ImageMagick's integer (column, row) offsets of the kernel taps along `angle_deg`."""
    px, py = width * np.sin(np.radians(angle_deg)), width * np.cos(np.radians(angle_deg))
    hyp = np.hypot(px, py)
    i = np.arange(width)
    return np.ceil(i * py / hyp - 0.5).astype(int), np.ceil(i * px / hyp - 0.5).astype(int)


# The corruptions: (B, 28, 28) float64 images in [0, 1] and a Generator -> float images in [0, 255].

def shot_noise(x, rng):
    """Severity 5: Poisson photon counts at 3 photons per unit intensity."""
    c = 3
    return np.clip(rng.poisson(x * c) / c, 0, 1) * 255


def impulse_noise(x, rng):
    """Severity 4: skimage's salt-and-pepper, 17% of pixels set to 0 or 1 in equal shares."""
    amount = 0.17
    flipped = rng.random(x.shape) < amount
    salted = rng.random(x.shape) < 0.5
    out = x.copy()
    out[flipped & salted] = 1.0
    out[flipped & ~salted] = 0.0
    return np.clip(out, 0, 1) * 255


def glass_blur(x, rng):
    """Severity 1: blur (sigma 0.7), swap each pixel with a neighbour at offset in {-1, 0}^2 with p = 1/2,
    scanning from the bottom right, twice, then blur again. Vectorised over the batch, not over pixels.
    Both blurs are vertical only: the published code called gaussian(multichannel=True) on a 2-D image,
    which treats the columns as colour channels."""
    sigma, delta, iterations = 0.7, 1, 2
    x = (_gaussian(x, sigma, columns=False) * 255).astype(np.uint8)
    b = np.arange(len(x))
    for _ in range(iterations):
        for h in range(SIZE - delta, delta, -1):
            for w in range(SIZE - delta, delta, -1):
                swap = rng.random(len(x)) < 0.5
                dx, dy = rng.integers(-delta, delta, size=(2, len(x)))
                hp, wp = h + dy, w + dx
                here, there = x[b, h, w].copy(), x[b, hp, wp].copy()
                x[b, h, w] = np.where(swap, there, here)
                x[b, hp, wp] = np.where(swap, here, there)
    return np.clip(_gaussian(x / 255.0, sigma, columns=False), 0, 1) * 255


def motion_blur(x, rng):
    """Severity 1: ImageMagick motion blur (radius 10, sigma 3) at an angle drawn from [-45, 45] degrees,
    edge pixels repeated beyond the border, result rounded to uint8 as the PNG round trip did."""
    kernel = motion_kernel(10, 3)
    angles = rng.uniform(-45, 45, len(x))
    rows, cols = np.mgrid[:SIZE, :SIZE]
    out = np.empty_like(x)
    for n, (image, angle) in enumerate(zip(x, angles)):
        dcol, drow = motion_offsets(len(kernel), angle)
        acc = np.zeros((SIZE, SIZE))
        for k, dc, dr in zip(kernel, dcol, drow):
            acc += k * image[np.clip(rows + dr, 0, SIZE - 1), np.clip(cols + dc, 0, SIZE - 1)]
        out[n] = acc
    return np.round(np.clip(out, 0, 1) * 255)


def shear(x, rng):
    """Severity 2: shear by 0.4 rad in a random direction about the image centre."""
    s = 0.4 * rng.choice([-1, 1], len(x))
    linear = np.stack([np.stack([np.ones_like(s), -np.sin(s)], -1), np.stack([np.zeros_like(s), np.cos(s)], -1)], 1)
    return np.clip(affine_warp(x, np.stack([centred(m) for m in linear])), 0, 1) * 255


def scale(x, rng):
    """Severity 3: shrink to 70% about the image centre (the inverse map scales by 1/0.7)."""
    return np.clip(affine_warp(x, centred(np.eye(2) / 0.7)), 0, 1) * 255


def rotate(x, rng):
    """Severity 2: rotate by 0.4 rad in a random direction about the image centre."""
    r = 0.4 * rng.choice([-1, 1], len(x))
    linear = np.stack([np.stack([np.cos(r), -np.sin(r)], -1), np.stack([np.sin(r), np.cos(r)], -1)], 1)
    return np.clip(affine_warp(x, np.stack([centred(m) for m in linear])), 0, 1) * 255


def brightness(x, rng):
    """Severity 5: HSV value + 0.5; for grey images the HSV round trip is x + 0.5, clipped."""
    return np.clip(x + 0.5, 0, 1) * 255


def translate(x, rng):
    """Severity 3: shift by 3 px along each axis, each direction drawn at random."""
    d = 3 * rng.choice([-1, 1], (len(x), 2))
    m = np.tile(np.eye(3), (len(x), 1, 1))
    m[:, 0, 2], m[:, 1, 2] = d[:, 0], d[:, 1]
    return np.clip(affine_warp(x, m), 0, 1) * 255


def stripe(x, rng):
    """Invert the 7 leftmost and 7 rightmost columns."""
    out = x * 255
    out[:, :, :7] = 255 - out[:, :, :7]
    out[:, :, 21:] = 255 - out[:, :, 21:]
    return out


def fog(x, rng):
    """Severity 5: add 3 x a plasma fractal (wibble decay 1.4), rescale so the digit's maximum is kept."""
    c, decay = 3.0, 1.4
    top = x.max(axis=(1, 2), keepdims=True)
    out = np.empty_like(x)
    for start in range(0, len(x), 500):  # 256x256 maps: bounded memory
        part = slice(start, start + 500)
        out[part] = x[part] + c * plasma_fractal(len(x[part]), rng, wibbledecay=decay)[:, :SIZE, :SIZE]
    return np.clip(out * top / (top + c), 0, 1) * 255


def spatter(x, rng):
    """Severity 4: blurred Gaussian 'liquid' thresholded into blobs of grey mud (63/255) over the digit."""
    loc, spread, sigma, threshold, mask_sigma = 0.65, 0.3, 1, 0.65, 1.5
    liquid = _gaussian(rng.normal(loc, spread, x.shape), sigma)
    liquid[liquid < threshold] = 0
    m = _gaussian((liquid > threshold).astype(np.float32), mask_sigma)
    m[m < 0.8] = 0
    return np.clip(x * (1 - m) + 63 / 255 * m, 0, 1) * 255


def dotted_line(x, rng):
    """A line across the image between two random rows, with every other 2-column band removed."""
    out = np.empty_like(x)
    for n, image in enumerate(x):
        r0, r1 = rng.integers(0, 27, size=2)
        line = line_from_points(0, r0, 27, r1)
        for band in range(0, 28, 4):
            line[:, band : band + 2] = 0
        out[n] = np.clip(image + line, 0, 1)
    return out * 255


def zigzag_points(r0: float, r1: float, a: float = 2.0, b: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """The published zigzag's corner points (columns, rows) from column 2 to 25, rows r0 -> r1."""
    c0, c1 = 2, 25
    theta = np.arctan((r1 - r0) / (c1 - c0))
    d = (c1 - c0) / np.cos(theta)
    points = [(0.0, 0.0)]
    for i in range(int((d - a) // (2 * a)) + 1):
        r_i = (-1) ** i * b
        points.append(((2 * i + 1) * a, r_i))
    max_c = (2 * a) * (d // (2 * a))
    if d != max_c:
        points.append((d, r_i / (2 * (d - max_c))))
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    cs, rs = rotation @ np.array(points).T
    return cs + c0, rs + r0


def zigzag(x, rng):
    """A zigzag line (segments 2 px long, 2 px high) from column 2 to 25, at a random row and slope."""
    out = np.empty_like(x)
    for n, image in enumerate(x):
        r0 = rng.integers(0, 27)
        cs, rs = zigzag_points(r0, r0 + rng.integers(-5, 5))
        for i in range(1, len(cs)):
            image = np.clip(image + line_from_points(cs[i - 1], rs[i - 1], cs[i], rs[i]), 0, 1)
        out[n] = image
    return out * 255


def canny_edges(x, rng):
    """skimage's Canny edge map (sigma 1, thresholds 0.1 / 0.2): the digit's outline only."""
    from skimage.feature import canny

    return np.stack([canny(image) for image in x]).astype(np.float64) * 255


FUNCTIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    name: globals()[name] for name in CORRUPTIONS
}


def corrupt(images: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """(N, 28, 28) uint8 digits -> the same digits under corruption `name`, uint8 as MNIST-C stores them."""
    if name not in FUNCTIONS:
        raise ValueError(f"unknown corruption {name!r}: choose one of {', '.join(CORRUPTIONS)}")
    rng = np.random.default_rng([seed, CORRUPTIONS.index(name)])
    out = FUNCTIONS[name](images.astype(np.float64) / 255.0, rng)
    return np.clip(out, 0, 255).astype(np.uint8)  # truncation, as the published float32 -> uint8 cast


def mnist_c(images: np.ndarray, seed: int = 0, names=CORRUPTIONS, progress: bool = True) -> dict[str, np.ndarray]:
    """{corruption: (N, 28, 28) uint8} for the test digits, generated once and kept in the cache folder."""
    from loader import cache_dir, keep_array

    key = hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()[:12]
    folder = cache_dir() / f"mnist-c-v{VERSION}-{key}-seed{seed}"
    out = {}
    for name in names:
        path = folder / f"{name}.npy"
        if path.is_file():
            try:
                out[name] = np.load(path)
                continue
            except (OSError, ValueError):
                pass
        if progress:
            print(f"generating MNIST-C {name} for {len(images):,} digits (once; kept in {folder})", flush=True)
        out[name] = corrupt(images, name, seed)
        keep_array(path, out[name])
    return out


def accuracy(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy (%) of `model` (on its own device) on uint8 digits fed as MNIST-C defines: /255, normalised,
    nothing else."""
    from model import normalize, probabilities

    x = normalize(torch.from_numpy(images).float().div_(255).unsqueeze(1))
    y = torch.from_numpy(np.asarray(labels))
    return 100.0 * int((probabilities(model, x).argmax(1) == y).sum()) / len(x)


def evaluate(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict:
    """Clean and per-corruption accuracy, their mean and the worst corruption."""
    per = {name: accuracy(model, corrupted, labels) for name, corrupted in mnist_c(images, seed).items()}
    worst = min(per, key=per.get)
    return {"clean": accuracy(model, images, labels), "corruptions": per,
            "mean": float(np.mean(list(per.values()))), "worst": worst, "worst_acc": per[worst],
            "version": VERSION, "seed": seed}


def test_digits(data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test digits and labels as numpy arrays."""
    from datasets import mnist_split

    test = mnist_split(train=False, data_dir=data_dir, download=False)
    return test.data.numpy(), test.targets.numpy()


def main(argv: list[str] | None = None) -> float:
    """Evaluate a checkpoint on MNIST-C; print the table, optionally write it as JSON; return the mean."""
    from checkpoint import DEFAULT_CHECKPOINT, load_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="a train.py checkpoint")
    parser.add_argument("--data-dir", default=None, help="MNIST root (default: $MNIST_DATA_DIR, else ./data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corruptions' random draws")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model, payload = load_checkpoint(args.checkpoint)
    images, labels = test_digits(args.data_dir)
    result = evaluate(model, images, labels, args.seed)
    result["checkpoint"] = Path(args.checkpoint).name
    result["config"] = payload.get("config")
    for name, acc in result["corruptions"].items():
        print(f"{name:14s} {acc:6.2f}%")
    print(f"{'clean':14s} {result['clean']:6.2f}%\nmean {result['mean']:.2f}%, worst {result['worst']} "
          f"{result['worst_acc']:.2f}%")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return result["mean"]


if __name__ == "__main__":
    main()
