"""Every robustness figure of one trained model, split by what it may be used for.

- `validation`: held-out training digits (the run's --holdout), clean and under augment.validation_perturbations,
  plus training-style generated non-digits: the only figures a recipe or a verdict threshold is chosen on.
- `mnist_c` (mnist_c.py), `not_a_digit` (nondigits.py), `handwriting` (userset.py's conditions),
  `printed_digits` (digits in the system's fonts, printed, scanned small and pen-redrawn) and `variant_digits`
  (shapes MNIST's writers rarely made, drawn by random hands: a 9 with a small or open loop, a 1 with flag and
  base, a crossed 7, open and closed 4s, a narrow 0): writers that are not MNIST's, shapes the pen model does
  not make; benchmarks, measured and reported, never chosen on (the even half of the printed faces and of the
  drawn hands may guide a choice; the odd half never does).

    python -m evidence.robustness --checkpoint runs/15k-seed0/checkpoint.pt [--json out.json]
    python -m evidence.robustness --variants --checkpoint A.pt B.pt ... [--json out.json]   # the drawn shapes only
    python -m evidence.robustness --checkpoint A.pt B.pt --rejector RA.pt RB.pt [--variants]  # A answers, RA refuses

experiments.py adds these figures to each run's result file.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np
import torch

import augment
from checkpoint import OWN_REJECT_BELOW, REJECT_BELOW, is_digit
from datasets import mnist_split, validation_digits
from evidence import mnist_c, nondigits
from model import normalize, probabilities

VALIDATION_NOT_DIGITS = 1000
VALIDATION_SEED = 99  # the validation draws' own seed, apart from any run's
HANDWRITING_DIGITS = 1000  # test digits per handwriting condition, as `userset.py --conditions`


@functools.cache  # the same images for every run evaluated in one process (read-only)
def validation_printed() -> torch.Tensor:
    """Printed letters and signs in the faces training never renders (augment.VALIDATION_FACES), as printed and
    redrawn with a pen: the validation's stand-in for the not-a-digit set's font glyphs."""
    printed = augment.font_glyphs(augment.VALIDATION_FACES)
    return torch.cat([printed, nondigits.pen_drawn(printed, VALIDATION_SEED)])


@functools.cache  # the same images for every run evaluated in one process (read-only)
def validation_curves(n: int = VALIDATION_NOT_DIGITS) -> torch.Tensor:
    """Curls, arcs and loops a moving pen makes when it turns at a drifting rate (a third family of curves, after
    training's scribbles and the not-a-digit set's harmonics), framed as MNIST: the validation's stand-in for
    the scribbles people send."""
    from pens import frame_digits

    g = torch.Generator().manual_seed(VALIDATION_SEED)
    steps = 48
    turn = (torch.rand(n, 1, generator=g) - 0.5) * 0.4 + (0.03 * torch.randn(n, steps, generator=g)).cumsum(1)
    heading = torch.rand(n, 1, generator=g) * 2 * np.pi + turn.cumsum(1)  # radians per step, drifting
    path = torch.stack([heading.cos(), heading.sin()], -1).cumsum(1)  # (n, steps, 2), one pixel per step
    low, high = path.amin(1, keepdim=True), path.amax(1, keepdim=True)
    path = 4 + (path - low) * 20 / (high - low).amax(-1, keepdim=True)  # into a 20-px box, aspect kept
    return frame_digits(augment.segments_ink(path, 1.5 + 2.5 * torch.rand(n, generator=g))[:, 0], 1)


@torch.no_grad()
def validation(model: torch.nn.Module, holdout: int, data_dir=None, below: float = OWN_REJECT_BELOW) -> dict:
    """Accuracy (%) on the last `holdout` training digits, clean and perturbed; % of them refused (top probability
    under `below`); % of generated non-digits, of printed validation glyphs and of validation curves refused."""
    held = validation_digits(holdout, data_dir)
    x, y = held.data.unsqueeze(1).float() / 255, held.targets
    sets = {"clean": x, **augment.validation_perturbations(x, VALIDATION_SEED)}
    acc = {name: mnist_c.accuracy(model, (v[:, 0] * 255).round().to(torch.uint8).numpy(), y.numpy())
           for name, v in sets.items()}
    g = torch.Generator().manual_seed(VALIDATION_SEED)
    others = augment.not_digits(x, VALIDATION_NOT_DIGITS, g)
    perturbed = [a for name, a in acc.items() if name != "clean"]

    def refused(images: torch.Tensor) -> float:  # % of `images` the model calls "not a digit / not sure"
        return 100.0 * float((~is_digit(nondigits.top_probability(model, images), below)).float().mean())

    return {"holdout": holdout, "accuracy": acc, "perturbed_mean": float(np.mean(perturbed)),
            "digits_refused": refused(x), "not_digits_refused": refused(others),
            "printed_refused": refused(validation_printed()), "curves_refused": refused(validation_curves())}


VALIDATION_CONDITION_DIGITS = 200  # held-out training digits per handwriting condition


@functools.cache  # the same renderings for every run evaluated in one process (read-only)
def validation_conditions(holdout: int, data_dir=None, n: int = VALIDATION_CONDITION_DIGITS) -> torch.Tensor:
    """The first `n` of the last `holdout` training digits under each of userset.py's handwriting conditions (pens,
    markers, mouse, scans, blur, JPEG, perspective), through predict.py's preprocessing -> (conditions x n, 1, 28, 28)
    in [0, 1]: the validation's stand-in for digits people write with their own pens, which no verdict should refuse."""
    from evidence.userset import condition_renderings
    from predict import preprocess

    digits = validation_digits(holdout, data_dir).data[:n].numpy()
    return torch.stack([preprocess(picture) for _, rendered in condition_renderings(digits, VALIDATION_SEED)
                        for picture in rendered]).unsqueeze(1)


THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@torch.no_grad()
def threshold_choice(model: torch.nn.Module, holdout: int, data_dir=None) -> dict:
    """For each candidate threshold: % of held-out training digits (as they are, and under the handwriting
    conditions), of generated non-digits, of printed validation glyphs and of validation curves refused, and % of
    the even hands' drawn shapes (drawn, and scanned small) the model reads right and accepts."""
    held = validation_digits(holdout, data_dir)
    x = held.data.unsqueeze(1).float() / 255
    others = augment.not_digits(x, VALIDATION_NOT_DIGITS, torch.Generator().manual_seed(VALIDATION_SEED))
    top = {name: nondigits.top_probability(model, images) for name, images in
           (("digits", x), ("conditions", validation_conditions(holdout, data_dir)), ("not_digits", others),
            ("printed", validation_printed()), ("curves", validation_curves()))}
    shapes = {}
    for variant in ("drawn", "low_res"):
        shape_x, shape_y, names = digit_variants(low_res=variant == "low_res")
        even = (torch.arange(len(shape_y)) % VARIANT_DRAWS) % 2 == 0  # the hands that may guide a choice
        right = read_right(model, shape_x, shape_y, below=0.0)[even]  # named right, whatever the verdict
        shapes[variant] = (right, nondigits.top_probability(model, shape_x)[even])
    return {str(t): {**{f"{name}_refused": 100.0 * float((p < t).float().mean()) for name, p in top.items()},
                     **{f"{variant}_even_accepted": 100.0 * float((right & (p >= t)).float().mean())
                        for variant, (right, p) in shapes.items()}} for t in THRESHOLDS}


def handwriting(model: torch.nn.Module, test_images: np.ndarray, test_labels: np.ndarray) -> dict:
    """userset.py's handwriting conditions on the first HANDWRITING_DIGITS test digits -> overall, worst, each."""
    from evidence.userset import RENDERER, condition_accuracy

    report = condition_accuracy(model, test_images[:HANDWRITING_DIGITS], test_labels[:HANDWRITING_DIGITS])
    accs = [r["accuracy"] for r in report.values()]
    return {"overall": round(float(np.mean(accs)), 2), "worst": min(accs),
            "by_condition": {k: r["accuracy"] for k, r in report.items()}, "renderer": RENDERER}


def font_digits(low_res: bool = False) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Digits 0-9 in every system font face (DejaVu, Liberation: 1 with flag and base, narrow 0, serif and italic
    shapes MNIST's writers rarely made), through predict.py's preprocessing; with `low_res` rendered about 10 px
    tall first, as in a low-resolution scan -> (images (N, 1, 28, 28), labels, face names)."""
    from PIL import Image

    from predict import preprocess

    faces = nondigits.fonts(limit=None)
    images = []
    for face in faces:
        for d in range(10):
            glyph = nondigits.render(str(d), face)
            if low_res:
                glyph = glyph.resize((max(4, glyph.width * 14 // glyph.height), 14), Image.Resampling.BILINEAR)
            images.append(preprocess(glyph))
    labels = torch.arange(10).repeat(len(faces))
    return torch.stack(images).unsqueeze(1), labels, [f.stem for f in faces]


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, k: int = 16) -> list:
    """Points along an ellipse from angle `start` to `end` (degrees; 0 = right, 90 = down)."""
    t = np.radians(np.linspace(start, end, k))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in t]


# Hand-written shapes that MNIST's writers rarely made and that the pen model cannot make from MNIST digits:
# name -> (label, strokes in the unit square, y down). Never trained on; only its even-numbered hands may guide
# a choice.
DIGIT_VARIANTS = {
    "9, small closed loop": (9, [_arc(0.55, 0.2, 0.22, 0.18, 0, 360), [(0.77, 0.2), (0.65, 1.0)]]),
    "9, open loop": (9, [_arc(0.45, 0.28, 0.3, 0.26, -10, -250), [(0.75, 0.15), (0.72, 1.0)]]),
    "1, flag and base": (1, [[(0.2, 0.25), (0.55, 0.0), (0.55, 1.0)], [(0.2, 1.0), (0.9, 1.0)]]),
    "7, crossed": (7, [[(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)], [(0.3, 0.52), (0.85, 0.52)]]),
    "4, open top": (4, [[(0.15, 0.0), (0.08, 0.6), (1.0, 0.6)], [(0.72, 0.0), (0.72, 1.0)]]),
    "4, closed": (4, [[(0.7, 1.0), (0.7, 0.0), (0.0, 0.68), (1.0, 0.68)]]),
    "0, narrow": (0, [_arc(0.5, 0.5, 0.22, 0.5, -90, 270, 24)]),
}
VARIANT_DRAWS = 100  # hands per shape; the odd-numbered draws are the held-out half


@functools.cache  # drawn once, for the drawn and the scanned set alike
def _variant_ink() -> torch.Tensor:
    """DIGIT_VARIANTS, each written by VARIANT_DRAWS random hands: (N, 1, 28, 28) ink, shape by shape (read-only)."""
    table, present = augment.skeleton_table([strokes for _, strokes in DIGIT_VARIANTS.values()])
    pick = torch.arange(len(DIGIT_VARIANTS)).repeat_interleave(VARIANT_DRAWS)
    return augment.hand_drawn(table, present, pick, torch.Generator().manual_seed(VALIDATION_SEED))


def digit_variants(low_res: bool = False) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Each DIGIT_VARIANTS shape written by VARIANT_DRAWS random hands (augment.hand_drawn) and framed as MNIST;
    with `low_res` scanned about 10 px tall first -> (images (N, 1, 28, 28), labels, shape names)."""
    from pens import frame_digits

    names = list(DIGIT_VARIANTS)
    ink = _variant_ink()
    if low_res:
        ink = augment.rescan(ink, 18)  # the glyph, ~16 of 28 px, becomes ~10 px tall
    labels = torch.tensor([DIGIT_VARIANTS[n][0] for n in names]).repeat_interleave(VARIANT_DRAWS)
    return frame_digits(ink[:, 0], 1), labels, names


def read_right(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
               rejector: torch.nn.Module | None = None, below: float | None = None) -> torch.Tensor:
    """Which images (N, 1, 28, 28) in [0, 1] `model` names right and the verdict (`rejector`'s top probability, or
    the model's own, at least `below`: by default checkpoint.REJECT_BELOW with a rejector, else OWN_REJECT_BELOW)
    calls a digit."""
    if below is None:
        below = OWN_REJECT_BELOW if rejector is None else REJECT_BELOW
    probs = probabilities(model, normalize(x))
    verdict = probs if rejector is None else probabilities(rejector, normalize(x))  # the model read once, not twice
    return (probs.argmax(1) == y) & is_digit(verdict.amax(1), below)


def variant_digits(model: torch.nn.Module, rejector: torch.nn.Module | None = None, below: float | None = None) -> dict:
    """Accuracy (%) per DIGIT_VARIANTS shape, drawn and as a low-resolution scan, for the even-numbered draws and
    the odd-numbered ones (held out); "not a digit / not sure" (`rejector`'s, or the model's own) counts as wrong."""
    out = {}
    for variant in ("drawn", "low-res scan"):
        x, y, names = digit_variants(low_res=variant == "low-res scan")
        right = read_right(model, x, y, rejector, below).view(len(names), VARIANT_DRAWS).float()
        out[variant] = {name: {"all": 100.0 * float(row.mean()), "draws_even": 100.0 * float(row[0::2].mean()),
                               "draws_odd_held_out": 100.0 * float(row[1::2].mean())}
                        for name, row in zip(names, right)}
    return out


def printed_digits(model: torch.nn.Module, rejector: torch.nn.Module | None = None, below: float | None = None) -> dict:
    """Accuracy (%) on font digits (font_digits), as printed, as a low-resolution scan and redrawn with random pens,
    for the even-numbered faces and the odd-numbered ones (the second half is kept out of every decision);
    "not a digit / not sure" (`rejector`'s, or the model's own) counts as wrong."""
    printed, y, faces = font_digits()
    renderings = {"printed": printed, "low-res scan": font_digits(low_res=True)[0],
                  "pen-redrawn": nondigits.pen_drawn(printed, VALIDATION_SEED)}
    out = {}
    for variant, x in renderings.items():
        right = read_right(model, x, y, rejector, below)
        half = (torch.arange(len(y)) // 10) % 2  # face index parity
        out[variant] = {"all": 100.0 * float(right.float().mean()),
                        "faces_even": 100.0 * float(right[half == 0].float().mean()),
                        "faces_odd_held_out": 100.0 * float(right[half == 1].float().mean())}
    out["faces"] = len(faces)
    return out


def evaluate(model: torch.nn.Module, holdout: int = 0, data_dir=None, below: float = OWN_REJECT_BELOW) -> dict:
    """All figures for `model` on its own (its top probability under `below` gives the verdict; REJECT_BELOW for
    the shipped rejection model): validation (if it was trained with a holdout), MNIST-C, not-a-digit, printed and
    hand-drawn variant digits, and for a model trained on all digits the slower handwriting set (screening runs
    skip it)."""
    test = mnist_split(False, data_dir, download=False)
    out = {}
    if holdout:
        out["validation"] = validation(model, holdout, data_dir, below)
    corrupted = mnist_c.evaluate(model, test.data.numpy(), test.targets.numpy())
    out["mnist_c"] = {k: corrupted[k] for k in ("mean", "worst", "worst_acc", "corruptions", "version")}
    out["not_a_digit"] = nondigits.refusal_rates(model, test.data, below)
    out["printed_digits"] = printed_digits(model, below=below)  # its even faces may guide a choice; the odd never do
    out["variant_digits"] = variant_digits(model, below=below)  # so may its even draws; the odd ones never do
    if not holdout:
        out["handwriting"] = handwriting(model, test.data.numpy(), test.targets.numpy())
    return out


def evaluate_pair(model: torch.nn.Module, rejector: torch.nn.Module, data_dir=None) -> dict:
    """The figures that change when `rejector`'s top probability (under checkpoint.REJECT_BELOW) gives the verdict on
    `model`'s answers: the not-a-digit set and test digits refused (the rejector's alone), printed and hand-drawn
    variant digits (both)."""
    test = mnist_split(False, data_dir, download=False)
    return {"not_a_digit": nondigits.refusal_rates(rejector, test.data, REJECT_BELOW),
            "printed_digits": printed_digits(model, rejector), "variant_digits": variant_digits(model, rejector)}


def main(argv: list[str] | None = None) -> dict:
    from checkpoint import DEFAULT_CHECKPOINT, load_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", nargs="+", default=[str(DEFAULT_CHECKPOINT)],
                   help="the model (several with --variants)")
    p.add_argument("--data-dir", default=None, help="MNIST root (default: $MNIST_DATA_DIR, else ./data)")
    p.add_argument("--json", default=None, help="also write the figures to this file")
    p.add_argument("--thresholds", action="store_true",
                   help="only the validation refusal rates per candidate REJECT_BELOW (a model trained with --holdout)")
    p.add_argument("--variants", action="store_true",
                   help="only the hand-drawn shapes MNIST's writers rarely made (DIGIT_VARIANTS), for each checkpoint")
    p.add_argument("--rejector", nargs="+", default=None,
                   help="rejection models, one per checkpoint: the figures of each pair (evaluate_pair)")
    a = p.parse_args(argv)
    if len(a.checkpoint) > 1 and not (a.variants or a.rejector):
        p.error("several checkpoints are for --variants or --rejector; give one checkpoint")
    if a.rejector and len(a.rejector) != len(a.checkpoint):
        p.error(f"--rejector needs one rejection model per checkpoint: {len(a.checkpoint)} checkpoint(s), "
                f"{len(a.rejector)} rejector(s)")
    torch.set_num_threads(1)
    if a.rejector:
        result = {"pairs": {}}
        for path, reject_path in zip(a.checkpoint, a.rejector):
            (model, payload), (rejector, reject_payload) = load_checkpoint(path), load_checkpoint(reject_path)
            result["pairs"][f"{path} + {reject_path}"] = {
                "config": payload["config"], "rejector_config": reject_payload["config"],
                **(evaluate_pair(model, rejector, a.data_dir) if not a.variants else variant_digits(model, rejector))}
    elif a.variants:
        result = {"models": {}}
        for path in a.checkpoint:
            model, payload = load_checkpoint(path)
            result["models"][path] = {"config": payload["config"], **variant_digits(model)}
    else:
        model, payload = load_checkpoint(a.checkpoint[0])
        holdout = payload["config"].get("holdout", 0)
        if a.thresholds and not holdout:
            p.error(f"{a.checkpoint[0]} was trained on every training digit: --thresholds needs one trained with "
                    f"--holdout")
        result = threshold_choice(model, holdout, a.data_dir) if a.thresholds else evaluate(model, holdout, a.data_dir)
    result["command"] = "python -m evidence.robustness " + " ".join(argv if argv is not None else sys.argv[1:])
    print(json.dumps(result, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
