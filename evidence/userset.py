"""User-style test sets: MNIST test digits rendered as people's photos, scans and drawings, and the accuracy
of predict.py (the same preprocessing as the app) on them. Digits come from the MNIST *test* split only.

- photos: dark ink on tinted, noisy paper, enlarged 3-10x, off-centre on a non-square canvas, saved as
  RGB/greyscale/RGBA PNG, JPEG, BMP or GIF.
- handwriting conditions (CONDITIONS): thin pens and thick markers (0.5x-3x MNIST's stroke width), mouse
  strokes of constant width, low-resolution scans (digit down to ~8 px high), Gaussian blur, heavy JPEG,
  shear and perspective.

    python -m evidence.userset --n 1000                  # -> results/userset.json (photos)
    python -m evidence.userset --conditions --n 1000     # -> results/robustness.json (per condition)
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from checkpoint import DEFAULT_CHECKPOINT, DEFAULT_REJECTOR, load_checkpoint
from datasets import mnist_split
from pens import DIGIT_BOX, MNIST_STROKE, centre_lines, pen_ink, thin
from predict import ImageError, add_rejector_argument, load_rejector, predict_image

RENDERER = 2  # bump when the rendering of the sets changes; results of older renderers are marked in the docs
FORMATS = ("rgb.png", "grey.png", "rgba.png", "rgb.jpg", "grey.jpg", "rgb.bmp", "grey.gif")


def render_as_photo(digit: np.ndarray, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A (28, 28) uint8 MNIST digit (white on black) -> (a user-style PIL image, file suffix to save it as)."""
    size = int(rng.integers(84, 280))  # the 28x28 field enlarged 3x to 10x
    ink_mask = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    ink_mask = ink_mask.clip(0, 1)
    w, h = int(size * rng.uniform(1.0, 2.2)), int(size * rng.uniform(1.0, 1.8))
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    mask = np.zeros((h, w), np.float32)
    mask[top : top + size, left : left + size] = ink_mask
    paper = rng.uniform(0.72, 0.97) * np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.75, 1.0)])  # tinted
    ink = rng.uniform(0.0, 0.3) * np.array([rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), 1.0])  # blue-black pen
    shading = np.linspace(rng.uniform(-0.08, 0.0), rng.uniform(0.0, 0.08), w)[None, :, None]  # uneven light
    rgb = paper + shading + mask[..., None] * (ink - paper)
    rgb += rng.normal(0, rng.uniform(0.01, 0.05), rgb.shape)  # sensor / paper grain
    rgb8 = (rgb.clip(0, 1) * 255).astype(np.uint8)
    kind = FORMATS[int(rng.integers(len(FORMATS)))]
    img = Image.fromarray(rgb8, "RGB")
    if kind.startswith("grey"):
        img = img.convert("L")
    elif kind.startswith("rgba"):  # ink on a transparent background, as drawing apps export
        alpha = (mask * 255).astype(np.uint8)
        img = Image.merge("RGBA", (*Image.new("RGB", (w, h), tuple(int(255 * c) for c in ink)).split(),
                                   Image.fromarray(alpha)))
    if kind.endswith("gif"):
        img = img.convert("P")
    return img, "." + kind.split(".")[-1]


def write_userset(folder: Path, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> list[tuple[Path, int]]:
    """Render `images` into `folder` (JPEG at quality 60-90) -> [(path, true label)]."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (digit, label) in enumerate(zip(images, labels)):
        img, suffix = render_as_photo(digit, rng)
        path = folder / f"{i:05d}_label{int(label)}{suffix}"
        img.save(path, **({"quality": int(rng.integers(60, 91))} if suffix == ".jpg" else {}))
        written.append((path, int(label)))
    return written


SCALE = 4  # handwriting conditions are drawn at 4x MNIST's resolution: the 28x28 field becomes 112x112
WORK_BOX = SCALE * DIGIT_BOX  # px: stroke widths are measured with the digit's longer side this long
STROKE_PX = MNIST_STROKE * SCALE  # MNIST's median stroke width at that resolution


def ink_mask(digit: np.ndarray) -> np.ndarray:
    """A (28, 28) uint8 MNIST digit -> its ink coverage in [0, 1] at SCALE times the resolution."""
    size = 28 * SCALE
    big = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    return (np.asarray(big, np.float32) / 255).clip(0, 1)


def draw_pen(centre_line: np.ndarray, width: float) -> np.ndarray:
    """Ink in [0, 1] of a round pen `width` px wide drawn along a boolean centre line, edges anti-aliased."""
    pen = pen_ink(torch.from_numpy(centre_line)[None], torch.tensor([width / 2]))[0]
    return soften(pen.bool().numpy())


def soften(ink: np.ndarray) -> np.ndarray:
    """A boolean ink image with anti-aliased edges, in [0, 1]."""
    blurred = Image.fromarray(ink.astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(0.7))
    return np.asarray(blurred, np.float32) / 255


def ink_depth(ink: np.ndarray) -> np.ndarray:
    """For each ink pixel, how many 3x3 erosions it survives (its distance to the paper, in px); 0 on paper."""
    t = F.pad(torch.from_numpy(ink.astype(np.float32))[None, None], (1, 1, 1, 1))
    depth = torch.zeros_like(t)
    while t.any():
        depth += t
        t = F.pad(-F.max_pool2d(-t, 3, 1), (1, 1, 1, 1))
    return depth[0, 0, 1:-1, 1:-1].numpy()


def stroke_width(ink: np.ndarray) -> float:
    """Median stroke width in px of a boolean ink image: twice the depth along its centre line, minus one."""
    depth = ink_depth(ink)
    centre = thin(torch.from_numpy(ink)).numpy()
    return float(np.median(2 * depth[centre] - 1)) if centre.any() else 0.0


def restroke(digit: np.ndarray, width_factor: float) -> np.ndarray:
    """A (28, 28) uint8 digit redrawn along its centre line (at SCALE x) with a pen `width_factor` x MNIST's."""
    lines = centre_lines(torch.from_numpy(digit)[None], SCALE)[0]
    return draw_pen(lines.numpy(), width_factor * STROKE_PX)


def on_paper(mask: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Dark ink `mask` on white paper with a margin, as a greyscale image."""
    pad = int(rng.integers(10, 40))
    ink = np.pad(mask, pad)
    grey = 1.0 - ink * rng.uniform(0.75, 0.95)
    return Image.fromarray((grey * 255).round().astype(np.uint8))


def low_res_scan(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Down to a digit height of ~8-12 px (the 20 px MNIST box is 80 px here), then back up."""
    factor = rng.uniform(8, 12) / (20 * SCALE)
    small = img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))), Image.Resampling.BOX)
    return small.resize(img.size, Image.Resampling.BILINEAR)


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    """`img` after a round trip through JPEG at `quality`."""
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def shear_or_perspective(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A slight random shear (up to ±0.3) and perspective tilt, white paper filling the new corners."""
    w, h = img.size
    k = rng.uniform(-0.3, 0.3)
    px, py = rng.uniform(-0.0015, 0.0015, 2) * (112 / max(w, h))
    coeffs = (1, k, -k * h / 2, 0, 1, 0, px, py)
    return img.transform(img.size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC, fillcolor=255)


CONDITIONS: dict[str, Callable[[np.ndarray, np.random.Generator], Image.Image]] = {  # name -> digit, rng -> image
    "thin pen (0.5x stroke)": lambda d, rng: on_paper(restroke(d, rng.uniform(0.4, 0.6)), rng),
    "MNIST-like pen (1x)": lambda d, rng: on_paper(restroke(d, rng.uniform(0.8, 1.2)), rng),
    "marker (2x)": lambda d, rng: on_paper(restroke(d, rng.uniform(1.8, 2.2)), rng),
    "thick marker (3x)": lambda d, rng: on_paper(restroke(d, rng.uniform(2.7, 3.3)), rng),
    "mouse strokes (constant width, aliased)": lambda d, rng: on_paper(
        (restroke(d, rng.uniform(0.6, 1.6)) > 0.5).astype(np.float32), rng),
    "low-res scan (8-12 px digit)": lambda d, rng: low_res_scan(on_paper(ink_mask(d), rng), rng),
    "Gaussian blur": lambda d, rng: on_paper(ink_mask(d), rng).filter(ImageFilter.GaussianBlur(rng.uniform(2, 5))),
    "heavy JPEG (quality 5-15)": lambda d, rng: jpeg(on_paper(ink_mask(d), rng), int(rng.integers(5, 16))),
    "shear / perspective": lambda d, rng: shear_or_perspective(on_paper(ink_mask(d), rng), rng),
}


def condition_renderings(images: np.ndarray, seed: int = 0) -> Iterator[tuple[str, list[Image.Image]]]:
    """(name, every digit of `images` rendered so) for each condition in turn, each condition with its own seeded
    random draws."""
    for k, (name, render) in enumerate(CONDITIONS.items()):
        rng = np.random.default_rng([seed, k])
        yield name, [render(digit, rng) for digit in images]


def condition_accuracy(model, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, dict]:
    """Accuracy of `model` (through predict.py's preprocessing) on every condition -> {name: {accuracy, n}}."""
    report = {}
    for name, rendered in condition_renderings(images, seed):
        hits = 0
        for picture, label in zip(rendered, labels):
            try:
                hits += predict_image(model, picture).digit == int(label)
            except ImageError:  # counted as wrong: the user would get no answer
                pass
        report[name] = {"accuracy": round(100 * hits / len(labels), 2), "n": len(labels)}
    return report


def main(argv: list[str] | None = None) -> float:
    """Render the first --n MNIST test digits, predict them, write the results file; return accuracy %."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="number of test digits to render (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--conditions", action="store_true", help="the handwriting conditions -> results/robustness.json")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    add_rejector_argument(p)  # the verdict on the photo set
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", type=Path, default=None,
                   help="results file (default results/robustness.json with --conditions, else results/userset.json)")
    p.add_argument("--keep", type=Path, default=None, help="write the photos here instead of a temporary folder")
    a = p.parse_args(argv)
    try:
        model, rejector = load_checkpoint(a.checkpoint)[0], load_rejector(None if a.conditions else a.rejector)
    except (FileNotFoundError, ValueError) as exc:  # a missing or broken model file: say which, no traceback
        p.error(str(exc))
    test = mnist_split(False, a.data_dir, subset=a.n)
    results = Path(__file__).resolve().parent.parent / "results"
    out = a.out or results / ("robustness.json" if a.conditions else "userset.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = f"python -m evidence.userset {'--conditions ' if a.conditions else ''}--n {a.n} --seed {a.seed}" + (
        f" --checkpoint {a.checkpoint}" if a.checkpoint != DEFAULT_CHECKPOINT else "") + (
        f" --rejector {a.rejector}" if a.rejector != str(DEFAULT_REJECTOR) and not a.conditions else "")
    if a.conditions:
        report = condition_accuracy(model, test.data.numpy(), test.targets.numpy(), a.seed)
        accs = [r["accuracy"] for r in report.values()]
        acc = sum(accs) / len(accs)
        result = {"digits_per_condition": len(test), "overall_accuracy": round(acc, 2), "worst": min(accs),
                  "by_condition": report, "checkpoint": a.checkpoint.name, "command": command, "renderer": RENDERER}
        print(json.dumps(result, indent=1))
        out.write_text(json.dumps(result, indent=1) + "\n")
        return acc
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.keep or Path(tmp)
        files = write_userset(folder, test.data.numpy(), test.targets.numpy(), a.seed)
        hits, refused, by_suffix = 0, 0, {}
        for path, label in files:
            prediction = predict_image(model, path, rejector=rejector)
            ok = prediction.digit == label
            hits += ok
            refused += not prediction.is_digit
            s = by_suffix.setdefault(path.suffix, [0, 0])
            s[0], s[1] = s[0] + ok, s[1] + 1
    acc = 100 * hits / len(files)
    result = {"images": len(files), "accuracy": round(acc, 2), "refused": round(100 * refused / len(files), 2),
              "seed": a.seed, "checkpoint": a.checkpoint.name,
              "rejector": None if rejector is None else Path(a.rejector).name,
              "by_format": {k: round(100 * h / n, 2) for k, (h, n) in sorted(by_suffix.items())}, "command": command,
              "renderer": RENDERER}
    print(json.dumps(result, indent=1))
    out.write_text(json.dumps(result, indent=1) + "\n")
    return acc


if __name__ == "__main__":
    main()
