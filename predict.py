"""Recognise your own digit images: `python predict.py my_digit.jpg [folder/ ...] [--json]`.

Photos and scans are turned into MNIST-style inputs first, the way MNIST itself was made: light
paper becomes black, ink becomes white, paper texture is suppressed, the digit is cropped, its longer
side scaled to 20 px and placed in a 28x28 field centred on its centre of mass (pens.frame_digits, the
same framing the training pipeline gives its redrawn digits).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from checkpoint import DEFAULT_CHECKPOINT, DEFAULT_REJECTOR, OWN_REJECT_BELOW, REJECT_BELOW, is_digit, load_checkpoint
from model import Net, device_of, normalize, probabilities
from pens import DIGIT_BOX, PEN_RES, frame_digits

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MEDIAN_MIN_SIDE = 64  # px: speckle is filtered out of larger images only (see preprocess)
INK_THRESHOLD = 0.25  # after contrast stretching, fainter pixels are paper texture or noise
MIN_CONTRAST = 0.15  # ink must differ from paper by this much (0..1) or the image counts as blank
NOT_A_DIGIT_TEXT = "not a digit / not sure"  # the verdict under checkpoint.REJECT_BELOW (OWN_REJECT_BELOW alone)


class ImageError(ValueError):
    """An image that cannot be read or holds no digit; `path` names it."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass
class Prediction:
    """One image's result: the digit, its probability, the top 3 and the 28x28 input the model saw.

    `is_digit` is False when the rejection model is not sure enough (its top probability, `verdict_probability`,
    under REJECT_BELOW; without one, the model's own under OWN_REJECT_BELOW): drawings that are not one digit (a
    letter, a scribble, "10") land here; `digit` is then only the best guess.
    """

    path: str
    digit: int
    probability: float
    top3: list[tuple[int, float]]
    image: torch.Tensor  # (28, 28) in [0, 1], white ink on black, as in MNIST
    verdict_probability: float | None = None  # the rejection model's top probability; None: no rejection model

    @property
    def is_digit(self) -> bool:
        if self.verdict_probability is None:
            return is_digit(self.probability, OWN_REJECT_BELOW)
        return is_digit(self.verdict_probability, REJECT_BELOW)

    @property
    def verdict(self) -> str:
        """The digit as text, or "not a digit / not sure"."""
        return str(self.digit) if self.is_digit else NOT_A_DIGIT_TEXT

    def to_dict(self) -> dict:
        """JSON-ready form (without the image)."""
        return {"path": self.path, "verdict": self.verdict, "is_digit": self.is_digit, "digit": self.digit,
                "probability": round(self.probability, 4), "top3": [[d, round(p, 4)] for d, p in self.top3],
                "verdict_probability": None if self.verdict_probability is None else round(self.verdict_probability, 4)}


def open_image(source: str | os.PathLike | Image.Image) -> Image.Image:
    """A PIL image from a path (any format PIL reads) or an image; unreadable files raise ImageError."""
    if isinstance(source, Image.Image):
        return source
    try:
        with Image.open(source) as img:
            img.seek(0)  # first frame of an animated GIF
            img.load()
            return img.copy()
    except Image.DecompressionBombError as exc:  # a header claiming a huge size: refuse before decoding it
        raise ImageError(source, f"image is too large to be a digit photo ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(source, f"not a readable image ({type(exc).__name__}: {exc})") from exc


HIGH_DEPTH_MODES = ("I", "F", "I;16", "I;16B", "I;16L", "I;16N")  # 16/32-bit integer and float greys


def to_grey_on_paper(img: Image.Image, name: str = "image") -> np.ndarray:
    """Grey levels in [0, 1] with transparent areas turned into white paper.

    8-bit images are scaled by 255. 16-bit, 32-bit and float images are scaled by their own range (min to
    max): convert("L") would clip them at 255, and a 12-bit scan in a 16-bit file never reaches 65535.
    """
    img = ImageOps.exif_transpose(img)
    if img.mode in HIGH_DEPTH_MODES:
        grey = np.asarray(img, dtype=np.float64)
        if not np.isfinite(grey).all():
            raise ImageError(name, "image holds NaN or infinite pixel values")
        low, high = grey.min(), grey.max()
        return ((grey - low) / (high - low) if high > low else np.zeros_like(grey)).astype(np.float32)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def preprocess(source: str | os.PathLike | Image.Image) -> torch.Tensor:
    """Any digit image -> the (28, 28) MNIST-style input in [0, 1] (white ink on black, centred)."""
    name = "image" if isinstance(source, Image.Image) else str(source)
    grey = to_grey_on_paper(open_image(source), name)
    if min(grey.shape) < 4:
        raise ImageError(name, f"image is {grey.shape[1]}x{grey.shape[0]} px, too small to hold a digit")
    # The border is mostly paper: if it is light, the ink is dark and the image is inverted.
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 0.5:
        grey = 1.0 - grey
    # A median filter removes speckle; stretching paper (median) to 0 and ink (99.5th pct) to 1 removes tint.
    filtered = np.asarray(Image.fromarray(grey).filter(ImageFilter.MedianFilter(3)), dtype=np.float32)
    paper, ink = np.median(filtered), np.percentile(filtered, 99.5)
    if ink - paper < MIN_CONTRAST:
        raise ImageError(name, f"image looks blank (ink and paper differ by {ink - paper:.2f} < {MIN_CONTRAST})")
    # In a small image a 3x3 median eats the strokes themselves, so small images skip it.
    x = np.clip(((filtered if min(grey.shape) >= MEDIAN_MIN_SIDE else grey) - paper) / (ink - paper), 0.0, 1.0)
    x[x < INK_THRESHOLD] = 0.0
    rows, cols = np.nonzero(x.sum(1))[0], np.nonzero(x.sum(0))[0]
    x = x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    # Resampled (anti-aliased) to framing resolution here; framing itself is the training pipeline's.
    scale = DIGIT_BOX * PEN_RES / max(x.shape)
    size = (max(1, round(x.shape[1] * scale)), max(1, round(x.shape[0] * scale)))
    work = np.asarray(Image.fromarray(x).resize(size, Image.Resampling.LANCZOS), dtype=np.float32).clip(0, 1)
    return frame_digits(torch.from_numpy(work)[None], PEN_RES)[0, 0]


@torch.inference_mode()
def predict_image(
    model: Net, source: str | os.PathLike | Image.Image, device: torch.device | str | None = None,
    rejector: Net | None = None,
) -> Prediction:
    """Preprocess one image, classify it with `model` and, with a `rejector`, let that model's top probability
    decide whether it is a digit at all -> Prediction. Each model reads the image on its own device (`device`, if
    given, must be the answering model's)."""
    image = preprocess(source)
    x = normalize(image)[None, None]
    if device is not None and torch.device(device).type != device_of(model).type:
        raise ValueError(f"predict_image() reads the image on the model's own device, {device_of(model)}, not "
                         f"{device}: move the model with model.to({str(device)!r}) or leave device out")
    probs = probabilities(model, x)[0]
    top = probs.topk(3)
    top3 = [(int(d), float(p)) for p, d in zip(top.values, top.indices)]
    name = "image" if isinstance(source, Image.Image) else str(source)
    verdict_probability = None if rejector is None else float(probabilities(rejector, x).amax())
    return Prediction(name, top3[0][0], top3[0][1], top3, image, verdict_probability)


NO_REJECTOR = "none"  # --rejector none: the model's own top probability decides


def load_rejector(path: str | os.PathLike | None = DEFAULT_REJECTOR) -> Net | None:
    """The rejection model stored at `path`; None for None or "none" (the answering model's own top probability
    decides then)."""
    if path is None or str(path) == NO_REJECTOR:
        return None
    if not Path(path).is_file():
        raise FileNotFoundError(f"rejection model {path} does not exist: train one with `python -m "
                                f"evidence.experiments reject`, or pass --rejector {NO_REJECTOR} to let the model's "
                                f"own top probability decide")
    return load_checkpoint(path)[0]


def add_rejector_argument(p: argparse.ArgumentParser) -> None:
    """The --rejector option predict.py, app.py and evidence/userset.py share (load it with load_rejector)."""
    p.add_argument("--rejector", default=str(DEFAULT_REJECTOR),
                   help=f"the model whose top probability decides 'not a digit' (default: the shipped "
                        f"checkpoints/s6-reject.pt); {NO_REJECTOR}: the model's own")


def collect_images(paths: list[str | os.PathLike]) -> list[Path | ImageError]:
    """Expand folders into their image files (sorted); files are kept as given, whatever their suffix.

    A missing path or a folder without images becomes an ImageError in the list, so the caller can report
    it in its place and go on with the rest.
    """
    found: list[Path | ImageError] = []
    for p in map(Path, paths):
        if p.is_dir():
            images = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            found += images or [ImageError(p, f"folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")]
        elif p.exists():
            found.append(p)
        else:
            found.append(ImageError(p, "no such file or folder"))
    return found


def main(argv: list[str] | None = None) -> int:
    """CLI: print one line (or one JSON object) per image; exit 1 if any image failed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", help="image files or folders of images")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="default: the shipped checkpoints/s6.pt")
    add_rejector_argument(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    a = p.parse_args(argv)
    try:
        model, rejector = load_checkpoint(a.checkpoint)[0], load_rejector(a.rejector)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = collect_images(a.paths)
    failed = 0
    for f in files:
        try:
            r = f if isinstance(f, ImageError) else predict_image(model, f, rejector=rejector)
        except ImageError as exc:
            r = exc
        if isinstance(r, ImageError):
            failed += 1
            print(json.dumps({"path": r.path, "error": str(r)}) if a.json else f"error: {r}",
                  file=sys.stdout if a.json else sys.stderr)
            continue
        if a.json:
            print(json.dumps(r.to_dict()))
        else:
            alternatives = ", ".join(f"{d} {p:.1%}" for d, p in r.top3)
            answer = (f"{r.digit} ({r.probability:.1%})" if r.is_digit
                      else f"{NOT_A_DIGIT_TEXT} (best guess {r.digit}, {r.probability:.1%})")
            print(f"{f}: {answer}  top 3: {alternatives}")
    if failed:
        print(f"{failed} of {len(files)} input(s) could not be predicted", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
