"""The "not a digit" evaluation set, and how often the model says "not a digit / not sure".

Non-digits a user of a draw-a-digit page sends: letters and symbols in several fonts (through predict.py's
preprocessing, as a photo of them would go) and in a hand-like pen (the same glyphs redrawn along their
centre lines with random pens), scribbles, blobs, and two MNIST test digits side by side ("10"). Glyphs that
are a digit in many hands (O, I, l, S, Z, B, b, g, q, |, /, ...) are left out: refusing them would be wrong.

No training or tuning decision sees this set: training's non-digits (augment.not_digits) come from other
generators (its hand-written letters from stroke skeletons of part of the alphabet, `unseen_glyphs_refused`
counting the font letters and signs outside that part; its printed ones from other typefaces, matplotlib's STIX
and Computer Modern, and without some characters, `never_trained_glyphs_refused` counting the glyphs of those),
and the verdict thresholds (checkpoint.REJECT_BELOW, OWN_REJECT_BELOW) are chosen on held-out training digits and
generated or validation-face non-digits.
`python -m evidence.robustness --checkpoint PATH` prints a model's refusal rates with its other figures.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

import augment
from model import normalize, probabilities
from pens import centre_lines, frame_digits, redraw_strokes

LETTERS = "ACDEFHJKLMNPQRTUVWXYacdefhkmnprtuvwxy"  # no O o I i l j S s Z z B b G g q: digits in some hands
SYMBOLS = "+-=×÷?!#%&@*<>$~^{}"
UNSEEN = "".join(c for c in LETTERS + SYMBOLS if c not in augment.SKELETONS)  # never drawn by training's hands
NEVER_TRAINED = "".join(c for c in UNSEEN if c not in augment.FONT_CHARS)  # nor printed, in any face
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation")
MAX_FONTS = 12
PER_KIND = 200  # generated items per generated kind (scribbles, blobs, pairs)
SEED = 1234  # the evaluation set's own seed; training's non-digits use the run's seed


def fonts(limit: int | None = MAX_FONTS) -> list[Path]:
    """Up to `limit` TrueType faces from the system's DejaVu and Liberation families, spread over them."""
    found = sorted(p for d in FONT_DIRS for p in Path(d).glob("*.ttf") if "Math" not in p.name)
    step = max(1, len(found) // limit) if limit else 1
    return found[::step][:limit]


def render(char: str, font: Path) -> Image.Image:
    """A dark glyph on white paper, framed with a margin as a photo or scan of it would be."""
    face = ImageFont.truetype(str(font), 96)
    img = Image.new("L", (320, 320), 255)  # room for the widest glyph and its margin
    ImageDraw.Draw(img).text((160, 160), char, font=face, fill=0, anchor="mm")
    left, top, right, bottom = Image.eval(img, lambda v: 255 - v).getbbox()
    margin = max(right - left, bottom - top) // 3 + 4
    return img.crop((left - margin, top - margin, right + margin, bottom + margin))


def glyphs(chars: str) -> torch.Tensor:
    """Every char in every font, through predict.py's preprocessing -> (N, 1, 28, 28) in [0, 1]."""
    from predict import preprocess

    return torch.stack([preprocess(render(c, f)) for f in fonts() for c in chars]).unsqueeze(1)


def pen_drawn(x: torch.Tensor, seed: int) -> torch.Tensor:
    """The glyphs redrawn along their centre lines with random round pens: a hand's strokes, not a font's."""
    g = torch.Generator().manual_seed(seed)
    lines = centre_lines((x[:, 0] * 255).round().to(torch.uint8))
    drawn, _ = redraw_strokes(x, lines, 1.0, g)
    return drawn


def scribbles(n: int, g: torch.Generator) -> torch.Tensor:
    """Smooth looping curves (sums of three random harmonics), unlike training's straight-segment scribbles;
    framed as MNIST frames a digit, as predict.py and the app would."""
    t = torch.linspace(0, 2 * math.pi, 48)
    k = torch.arange(1, 4).view(1, 3, 1)
    amp = 2 + torch.rand(n, 2, 3, 1, generator=g) * 4  # higher harmonics as strong as the first: loops, not an O
    phase = torch.rand(n, 2, 3, 1, generator=g) * 2 * math.pi
    curve = (amp * torch.cos(k * t + phase)).sum(2)  # (n, 2, 48)
    points = (14 + curve).transpose(1, 2)
    return frame_digits(augment.segments_ink(points, 1.5 + 2.5 * torch.rand(n, generator=g))[:, 0], 1)


def blobs(n: int, g: torch.Generator) -> torch.Tensor:
    """One to three filled ellipses, unlike training's thresholded noise fields; framed as MNIST."""
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    out = torch.zeros(n, 1, 28, 28)
    for i in range(n):
        for _ in range(1 + int(torch.randint(3, (1,), generator=g))):
            cy, cx, a, ratio, th = torch.rand(5, generator=g) * torch.tensor([14, 14, 5, 0.4, math.pi]) + \
                torch.tensor([7, 7, 3, 0.6, 0])
            b = a * ratio  # never thinner than 3:5, or a blob is a thick 1
            u = (cols - cx) * torch.cos(th) + (rows - cy) * torch.sin(th)
            v = -(cols - cx) * torch.sin(th) + (rows - cy) * torch.cos(th)
            out[i, 0] = torch.maximum(out[i, 0], ((1 - (u / a) ** 2 - (v / b) ** 2) * 4).clamp(0, 1))
    return frame_digits(out[:, 0], 1)


def digit_pairs(test_images: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """Two MNIST test digits side by side, framed as predict.py frames a photo of them ("10", "42")."""
    from predict import preprocess

    idx = torch.randint(len(test_images), (n, 2), generator=g)
    pairs = torch.cat([test_images[idx[:, 0]], test_images[idx[:, 1]]], dim=-1)  # (n, 28, 56) uint8
    return torch.stack([preprocess(Image.fromarray(255 - p.numpy())) for p in pairs]).unsqueeze(1)


def evaluation_set(test_images: torch.Tensor) -> dict[str, torch.Tensor]:
    """{kind: (N, 1, 28, 28) images in [0, 1]} of the not-a-digit evaluation set."""
    if not fonts():
        raise FileNotFoundError(f"no TrueType fonts in {' or '.join(FONT_DIRS)}: install fonts-dejavu-core and "
                                f"fonts-liberation (apt-get install -y fonts-dejavu-core fonts-liberation)")
    g = torch.Generator().manual_seed(SEED)
    letters = glyphs(LETTERS)
    return {
        "letters (fonts)": letters,
        "symbols (fonts)": glyphs(SYMBOLS),
        "letters (pen)": pen_drawn(letters, SEED),
        "scribbles": scribbles(PER_KIND, g),
        "blobs": blobs(PER_KIND, g),
        "two digits": digit_pairs(test_images, PER_KIND, g),
    }


def top_probability(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's top class probability for each image of (N, 1, 28, 28) in [0, 1] (on the CPU)."""
    return probabilities(model, normalize(x)).amax(1)


def refusal_rates(model: torch.nn.Module, test_images: torch.Tensor, below: float) -> dict:
    """% refused ("not a digit / not sure": `model`'s top probability under `below`) per non-digit kind and
    overall, and % of MNIST test digits refused."""
    from checkpoint import is_digit

    top = {kind: top_probability(model, x) for kind, x in evaluation_set(test_images).items()}
    per = {kind: 100.0 * float((~is_digit(p, below)).float().mean()) for kind, p in top.items()}
    digits = top_probability(model, test_images.unsqueeze(1).float() / 255)
    # The font glyphs training's hand-written letters never drew (glyphs() renders every char in every font).
    fonts_glyphs = torch.cat([top["letters (fonts)"], top["symbols (fonts)"]])
    chars = [c for text in (LETTERS, SYMBOLS) for _ in fonts() for c in text]

    def refused(among: str) -> float:  # % of the font glyphs of these characters refused
        return 100.0 * float((~is_digit(fonts_glyphs[torch.tensor([c in among for c in chars])], below)).float().mean())

    return {"non_digits_refused": per, "non_digits_refused_mean": float(np.mean(list(per.values()))),
            "unseen_glyphs_refused": refused(UNSEEN), "never_trained_glyphs_refused": refused(NEVER_TRAINED),
            "mnist_test_refused": 100.0 * float((~is_digit(digits, below)).float().mean()), "reject_below": below}
