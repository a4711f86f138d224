"""A user-style test set: MNIST test digits rendered as photos/scans, and predict.py's accuracy on them.

Each digit becomes dark ink on tinted, noisy paper, enlarged 3-10x, off-centre on a non-square canvas,
saved as RGB/greyscale/RGBA PNG, JPEG, BMP or GIF. Digits come from the MNIST *test* split, which the
model never trained on.

    python userset.py --n 1000            # -> results/userset.json (accuracy of checkpoints/s6.pt)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

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


def main(argv: list[str] | None = None) -> float:
    """Render the first --n MNIST test digits, predict them, write results/userset.json; return accuracy %."""
    from datasets import mnist_split
    from predict import DEFAULT_CHECKPOINT, predict_image
    from util import load_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="number of test digits to render (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--keep", type=Path, default=None, help="write the images here instead of a temporary folder")
    a = p.parse_args(argv)
    test = mnist_split(False, a.data_dir, subset=a.n)
    model, _ = load_checkpoint(a.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.keep or Path(tmp)
        files = write_userset(folder, test.images.numpy(), test.labels.numpy(), a.seed)
        hits, by_suffix = 0, {}
        for path, label in files:
            ok = predict_image(model, path).digit == label
            hits += ok
            s = by_suffix.setdefault(path.suffix, [0, 0])
            s[0], s[1] = s[0] + ok, s[1] + 1
    acc = 100 * hits / len(files)
    result = {"images": len(files), "accuracy": round(acc, 2), "seed": a.seed, "checkpoint": str(a.checkpoint.name),
              "by_format": {k: round(100 * h / n, 2) for k, (h, n) in sorted(by_suffix.items())},
              "command": f"python userset.py --n {a.n} --seed {a.seed}"}
    print(json.dumps(result, indent=1))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "userset.json").write_text(json.dumps(result, indent=1) + "\n")
    return acc


if __name__ == "__main__":
    main()
