"""Every robustness figure of one trained model, split by what it may be used for.

- `validation`: held-out training digits (the run's --holdout), clean and under augment.validation_perturbations,
  plus training-style generated non-digits: the only figures a recipe or REJECT_BELOW is chosen on.
- `mnist_c` (mnist_c.py), `not_a_digit` (nondigits.py), `handwriting` (userset.py's conditions) and
  `printed_digits` (digits in the system's fonts, printed, scanned small and pen-redrawn: writers that are not
  MNIST's, shapes the pen model does not make): benchmarks, measured and reported, never chosen on.

    python robustness.py --checkpoint runs/15k-seed0/checkpoint.pt [--json out.json]

experiments.py adds these figures to each run's result file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import augment
import mnist_c
import nondigits
from datasets import mnist_split, normalize, validation_digits

VALIDATION_NOT_DIGITS = 1000
VALIDATION_SEED = 99  # the validation draws' own seed, apart from any run's
HANDWRITING_DIGITS = 1000  # test digits per handwriting condition, as `userset.py --conditions`


@torch.no_grad()
def validation(model: torch.nn.Module, holdout: int, data_dir=None) -> dict:
    """Accuracy (%) on the last `holdout` training digits, clean and perturbed; % of them refused; % of generated
    non-digits refused."""
    from predict import is_digit

    held = validation_digits(holdout, data_dir)
    x, y = held.data.unsqueeze(1).float() / 255, held.targets
    sets = {"clean": x, **augment.validation_perturbations(x, VALIDATION_SEED)}
    acc = {name: mnist_c.accuracy(model, (v[:, 0] * 255).round().to(torch.uint8).numpy(), y.numpy())
           for name, v in sets.items()}
    g = torch.Generator().manual_seed(VALIDATION_SEED)
    others = augment.not_digits(x, VALIDATION_NOT_DIGITS, g)
    perturbed = [a for name, a in acc.items() if name != "clean"]
    return {"holdout": holdout, "accuracy": acc, "perturbed_mean": float(np.mean(perturbed)),
            "digits_refused": 100.0 * float((~is_digit(nondigits.top_probability(model, x))).float().mean()),
            "not_digits_refused": 100.0 * float((~is_digit(nondigits.top_probability(model, others))).float().mean())}


THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@torch.no_grad()
def threshold_choice(model: torch.nn.Module, holdout: int, data_dir=None) -> dict:
    """For each candidate REJECT_BELOW: % of held-out training digits and % of generated non-digits refused."""
    held = validation_digits(holdout, data_dir)
    x = held.data.unsqueeze(1).float() / 255
    others = augment.not_digits(x, VALIDATION_NOT_DIGITS, torch.Generator().manual_seed(VALIDATION_SEED))
    digits, junk = nondigits.top_probability(model, x), nondigits.top_probability(model, others)
    return {str(t): {"digits_refused": 100.0 * float((digits < t).float().mean()),
                     "not_digits_refused": 100.0 * float((junk < t).float().mean())} for t in THRESHOLDS}


def handwriting(model: torch.nn.Module, test_images: np.ndarray, test_labels: np.ndarray) -> dict:
    """userset.py's handwriting conditions on the first HANDWRITING_DIGITS test digits -> overall, worst, each."""
    from userset import RENDERER, condition_accuracy

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


def printed_digits(model: torch.nn.Module) -> dict:
    """Accuracy (%) on font digits (font_digits), as printed, as a low-resolution scan and redrawn with random pens,
    for the even-numbered faces and the odd-numbered ones (the second half is kept out of every decision)."""
    from predict import is_digit

    out = {}
    for variant in ("printed", "low-res scan", "pen-redrawn"):
        x, y, faces = font_digits(low_res=variant == "low-res scan")
        if variant == "pen-redrawn":
            x = nondigits.pen_drawn(x, VALIDATION_SEED)
        prob = torch.cat([model(normalize(x[i : i + 1000])).exp() for i in range(0, len(x), 1000)])
        right = (prob.argmax(1) == y) & is_digit(prob.amax(1))
        half = (torch.arange(len(y)) // 10) % 2  # face index parity
        out[variant] = {"all": 100.0 * float(right.float().mean()),
                        "faces_even": 100.0 * float(right[half == 0].float().mean()),
                        "faces_odd_held_out": 100.0 * float(right[half == 1].float().mean())}
    out["faces"] = len(faces)
    return out


def evaluate(model: torch.nn.Module, holdout: int = 0, data_dir=None) -> dict:
    """All figures for `model`: validation (if it was trained with a holdout), MNIST-C, not-a-digit, printed digits,
    and for a model trained on all digits the slower handwriting set (screening runs skip it)."""
    test = mnist_split(False, data_dir, download=False)
    out = {}
    if holdout:
        out["validation"] = validation(model, holdout, data_dir)
    corrupted = mnist_c.evaluate(model, test.data.numpy(), test.targets.numpy())
    out["mnist_c"] = {k: corrupted[k] for k in ("mean", "worst", "worst_acc", "corruptions", "version")}
    out["not_a_digit"] = nondigits.refusal_rates(model, test.data)
    out["printed_digits"] = printed_digits(model)  # its even faces may guide a choice; the odd ones never do
    if not holdout:
        out["handwriting"] = handwriting(model, test.data.numpy(), test.targets.numpy())
    return out


def main(argv: list[str] | None = None) -> dict:
    from checkpoint import DEFAULT_CHECKPOINT, load_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    p.add_argument("--data-dir", default=None, help="MNIST root (default: $MNIST_DATA_DIR, else ./data)")
    p.add_argument("--json", default=None, help="also write the figures to this file")
    p.add_argument("--thresholds", action="store_true",
                   help="only the validation refusal rates per candidate REJECT_BELOW (a model trained with --holdout)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    model, payload = load_checkpoint(a.checkpoint)
    holdout = payload["config"].get("holdout", 0)
    if a.thresholds and not holdout:
        p.error(f"{a.checkpoint} was trained on every training digit: --thresholds needs one trained with --holdout")
    result = threshold_choice(model, holdout, a.data_dir) if a.thresholds else evaluate(model, holdout, a.data_dir)
    result["command"] = "python robustness.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(json.dumps(result, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
