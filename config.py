"""The training recipe: every hyperparameter in one place, validated here, with its unit and reason.

train.py's flags are generated from these fields (`--batch-size` is `batch_size`), the notebook's S6_*
environment overrides are the same fields upper-cased (`S6_BATCH_SIZE`), and the experiments pass train.py
flags. A bad value is refused with the name the user typed, the rule and the value.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field

from model import DEFAULT_INPUT_NORM, DEFAULT_SIZE, INPUT_NORMS, SIZES

PIPELINES = ("fast", "torchvision")
PRECISIONS = ("float32", "tf32", "bfloat16", "auto")
ENV_PREFIX = "S6_"  # the notebook reads S6_EPOCHS, S6_SUBSET, ... (the tests run it small this way)


def lever(default, help: str, augmentation: bool = False):
    """A recipe field whose `help` (unit and reason) is shown by `train.py --help`; `augmentation` marks the fast
    pipeline's batch augmentations (AUGMENTATION): the loader reads them from the config, load_data by name."""
    return field(default=default, metadata={"help": help, "augmentation": augmentation})


def augmentation(default: float, help: str):
    """A lever of the fast pipeline's batch augmentation: off (0) in load_data unless given."""
    return lever(default, help, augmentation=True)


@dataclass
class TrainConfig:
    """The default recipe. Every entry point reads these values; nothing mirrors them by hand."""

    model: str = lever(DEFAULT_SIZE, "model size, a key of model.SIZES: 15k (default), 8k or 4k parameters; 60k for "
                                           "the model that only says 'not a digit'")
    epochs: int = lever(18, "full passes over the 60k training images; the one-cycle schedule spans them all; "
                            "the augmentation below needs more than the clean digits did (the course allows under 20)")
    batch_size: int = lever(128, "images per step: many updates per epoch, yet big enough to keep 2 cores busy")
    lr: float = lever(0.05, "peak learning rate of the one-cycle schedule (SGD, Nesterov momentum)")
    momentum: float = lever(0.9, "SGD momentum")
    weight_decay: float = lever(5e-4, "L2 penalty on all weights, per step (docs/results.md: ablation)")
    warmup: float = lever(0.2, "share of the steps spent rising to the peak lr, then cosine down to ~0")
    ema_decay: float = lever(0.999, "per-step decay of the weight average that is tested and saved (a horizon "
                                    "of ~1000 steps, ~2 epochs); 0 = test the raw weights")
    label_smoothing: float = lever(0.0, "share of the target spread over all classes; 0 = plain NLL")
    stroke_prob: float = augmentation(0.1, "share of training digits redrawn along their centre line with a pen of "
                                           "random width (fast pipeline only): people's pens are not MNIST's")
    shift: float = augmentation(1.0, "random shifts of up to this many pixels along each axis (fast pipeline): digits "
                                     "are not always centred")
    elastic: float = augmentation(1.0, "elastic bends of up to about this many pixels (Simard et al. 2003; fast "
                                       "pipeline)")
    noise: float = augmentation(0.15, "additive Gaussian noise of a random std up to this (pixels in [0, 1]) on half "
                                      "the images (fast pipeline): sensors and scans are noisy")
    erase: float = augmentation(0.05, "share of images with a random rectangle erased to black, white or noise (fast "
                                      "pipeline): parts of real digits are hidden or smudged; more costs small "
                                      "printed digits (docs/robustness.md)")
    not_digits: float = augmentation(0.0, "generated non-digits (scribbles, blobs, symbols, two digits) added per "
                                          "batch, as a share of the batch size (fast pipeline): teaches the model to "
                                          "say 'not a digit'; costs clean accuracy: off by default, on in the "
                                          "rejection model (evidence.sweeps.REJECT)")
    not_digit_letters: float = augmentation(0.0, "share of the generated non-digits that are hand-written letters and "
                                                 "signs (augment.SKELETONS, part of the alphabet): people send "
                                                 "letters too")
    not_digit_printed: float = augmentation(0.0, "share of the generated non-digits that are printed letters and "
                                                 "signs (augment.FONT_CHARS in matplotlib's STIX and Computer Modern "
                                                 "faces, half redrawn with a pen): people photograph print too")
    not_digit_curves: float = augmentation(0.0, "share of the generated scribbles drawn as smooth curves through "
                                                "their points, not polylines: a pen loops without corners (on in the "
                                                "rejection model, evidence.sweeps.REJECT)")
    low_res: float = augmentation(0.0, "share of training images, digits and non-digits alike, shrunk to 10-20 px and "
                                       "enlarged back (fast pipeline): soft low-resolution ink must not be what tells "
                                       "a non-digit apart (on in the rejection model, evidence.sweeps.REJECT)")
    digit_printed: float = augmentation(0.0, "share of training digits replaced by the same digit printed in a "
                                             "training face (augment.printed_digits, half redrawn with a pen): print "
                                             "and careful hands make shapes MNIST's writers rarely did, a 1 with a "
                                             "flag and a base")
    not_digit_weight: float = lever(0.5, "weight of the loss that spreads the model's probability evenly over the "
                                         "classes for a non-digit (outlier exposure, Hendrycks et al. 2019)")
    input_norm: str = lever(DEFAULT_INPUT_NORM, "per-image input normalisation inside the model: none, or minmax "
                                                "(stretch each image to the full range: a grey or low-contrast "
                                                "background costs nothing)")
    holdout: int = lever(0, "training images left out at the end of the split, to choose a recipe on; 0 = train on all")
    seed: int = lever(0, "fixes initialisation, shuffling order and augmentation")
    pipeline: str = lever("fast", "input pipeline: fast (in-memory, batched augmentation) or torchvision "
                                  "(the original per-image PIL transforms)")
    test_batch_size: int = lever(1000, "images per evaluation batch: larger is faster and changes nothing")
    subset: int | None = lever(None, "keep the first N images of each split, for quick checks; default: all")
    data_dir: str | None = lever(None, "MNIST root; default: $MNIST_DATA_DIR, else ./data")
    precision: str = lever("float32", "arithmetic of the training step: float32; tf32 (NVIDIA GPUs from Ampere on: "
                                      "faster convolutions, but off by default as it changes the history); or "
                                      "bfloat16 (autocast; faster on CPUs with AVX-512 BF16 or AMX and on GPUs with "
                                      "native bfloat16, docs/speed.md); auto: bfloat16 where the CPU or GPU has it "
                                      "natively, else float32; testing stays float32")
    threads: int | None = lever(None, "torch's intra-op threads; default: the cores other programs leave free, "
                                      "looked at as it trains (a fixed count reproduces a history exactly)")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            problem = check(f.name, getattr(self, f.name))
            if problem:
                raise ConfigError(f.name, problem)
        for name in AUGMENTATION:
            if getattr(self, name) and self.pipeline != "fast":
                raise ConfigError(name, f"must be 0 with pipeline {self.pipeline!r} (it exists in the fast pipeline "
                                        f"only), got {getattr(self, name)}")
        if self.holdout and self.subset is not None and self.holdout >= self.subset:
            raise ConfigError("holdout", f"must leave training images, got {self.holdout} of subset {self.subset}")

    def loader_args(self) -> dict:
        """load_data's keyword arguments for this recipe: `load_data(**cfg.loader_args(), device=device)`."""
        names = ("batch_size", "data_dir", "seed", "pipeline", "test_batch_size", "subset", "holdout", *AUGMENTATION)
        return {name: getattr(self, name) for name in names}

    def to_dict(self) -> dict:
        """The config as a plain dict (stored in checkpoints and histories)."""
        return dataclasses.asdict(self)


# The fast pipeline's batch augmentations, in field order: the fields declared with `augmentation(...)` above.
AUGMENTATION = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["augmentation"])

# Recipes beside the default, as the fields they change; flags given with `--preset NAME` override them.
PRESETS = {
    # 99.4% on a 2-core laptop CPU soonest (docs/speed.md): four epochs with a one-cycle peak eight times higher and
    # a weight average of ~100 steps, none of the perturbations only robustness needs, bfloat16 where the CPU has it.
    "quick": dict(epochs=4, lr=0.4, ema_decay=0.99, stroke_prob=0.0, elastic=0.0, noise=0.0, erase=0.0,
                  precision="auto"),
}


class ConfigError(ValueError):
    """A recipe field with a value outside its rule; `field` names it, the message says rule and value."""

    def __init__(self, name: str, problem: str) -> None:
        self.field, self.problem = name, problem
        super().__init__(f"{name} {problem}")

    def named(self, name: str) -> str:
        """The message with the field spelled as the user typed it (--batch-size, S6_BATCH_SIZE)."""
        return f"{name} {self.problem}"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


UNIT_INTERVAL = (lambda v: _is_number(v) and 0 <= v <= 1, "in [0, 1]")  # shares, and noise std on [0, 1] pixels
RULES = {  # field -> (holds for a valid value, the rule in words)
    "model": (lambda v: v in SIZES, f"one of {', '.join(SIZES)}"),
    "epochs": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "batch_size": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "lr": (lambda v: _is_number(v) and v > 0, "a positive finite number"),
    "momentum": (lambda v: _is_number(v) and 0 <= v < 1, "in [0, 1)"),
    "weight_decay": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "warmup": (lambda v: _is_number(v) and 0 < v < 1, "in (0, 1)"),
    "ema_decay": (lambda v: _is_number(v) and 0 <= v < 1, "in [0, 1)"),
    "label_smoothing": (lambda v: _is_number(v) and 0 <= v < 1, "in [0, 1)"),
    "stroke_prob": UNIT_INTERVAL,
    "shift": (lambda v: _is_number(v) and 0 <= v <= 8, "a number of pixels in [0, 8]"),
    "elastic": (lambda v: _is_number(v) and 0 <= v <= 8, "a number of pixels in [0, 8]"),
    "noise": UNIT_INTERVAL,
    "erase": UNIT_INTERVAL,
    "not_digits": UNIT_INTERVAL,
    "not_digit_letters": UNIT_INTERVAL,
    "not_digit_printed": UNIT_INTERVAL,
    "not_digit_curves": UNIT_INTERVAL,
    "low_res": UNIT_INTERVAL,
    "digit_printed": UNIT_INTERVAL,
    "not_digit_weight": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "input_norm": (lambda v: v in INPUT_NORMS, f"one of {', '.join(INPUT_NORMS)}"),
    "holdout": (lambda v: _is_int(v) and 0 <= v < 60_000, "an integer in [0, 60000)"),
    "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "pipeline": (lambda v: v in PIPELINES, f"one of {', '.join(PIPELINES)}"),
    "test_batch_size": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "subset": (lambda v: v is None or (_is_int(v) and v >= 1), "a positive integer (or unset for all images)"),
    "data_dir": (lambda v: v is None or isinstance(v, (str, os.PathLike)), "a folder path"),
    "precision": (lambda v: v in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
    "threads": (lambda v: v is None or (_is_int(v) and v >= 1), "a positive integer (or unset for automatic)"),
}


def check(name: str, value) -> str | None:
    """None if `value` suits field `name`, else 'must be <rule>, got <value>'."""
    holds, rule = RULES[name]
    return None if holds(value) else f"must be {rule}, got {value!r}"


def field_type(name: str) -> type:
    """The plain type of a field (int, float or str; `int | None` gives int)."""
    hint = typing.get_type_hints(TrainConfig)[name]
    return next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))


def parse_value(name: str, text: str):
    """Text (a flag or an environment variable) -> the field's type; ValueError names the rule."""
    kind = field_type(name)
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"must be {RULES[name][1]}, got {text!r}") from None


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, with its type, default and help; values are checked by TrainConfig."""
    defaults = TrainConfig()
    group = parser.add_argument_group("config.TrainConfig (one flag per field)")
    for f in dataclasses.fields(TrainConfig):
        default = getattr(defaults, f.name)
        choices = {"model": tuple(SIZES), "pipeline": PIPELINES, "precision": PRECISIONS,
                   "input_norm": INPUT_NORMS}.get(f.name)
        group.add_argument(flag(f.name), dest=f.name, type=field_type(f.name), default=None, choices=choices,
                           metavar=None if choices else f.name.upper(),
                           help=f"{f.metadata['help']} (default: {default})")
    group.add_argument("--preset", choices=tuple(PRESETS), help="start from a named recipe (config.PRESETS); the "
                       "flags above override its fields. quick: " + " ".join(
                           f"{flag(k)} {v}" for k, v in PRESETS["quick"].items()))


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig for parsed flags (unset ones keep their default); a bad value is parser.error()."""
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    given = {**PRESETS.get(getattr(args, "preset", None), {}), **given}
    if given.get("pipeline", "fast") != "fast":  # the augmentations it lacks are off unless asked for
        off = [name for name in AUGMENTATION if name not in given and getattr(TrainConfig(), name)]
        given.update(dict.fromkeys(off, 0.0))
        if off:
            print(f"note: --pipeline {given['pipeline']} has only the original augmentation, so "
                  f"{', '.join(flag(name) for name in off)} are 0 for this run", file=sys.stderr)
    try:
        return TrainConfig(**given)
    except ConfigError as exc:
        parser.error(exc.named(flag(exc.field)))


def config_from_env(environ: Mapping[str, str] = os.environ, **overrides) -> TrainConfig:
    """TrainConfig's defaults, then the S6_<FIELD> variables that are set, then `overrides`."""
    values = {}
    for f in dataclasses.fields(TrainConfig):
        var = ENV_PREFIX + f.name.upper()
        text = environ.get(var, "").strip()
        if text:
            try:
                values[f.name] = parse_value(f.name, text)
            except ValueError as exc:
                raise ValueError(f"{var} {exc}: fix or unset the variable") from None
    try:
        return TrainConfig(**{**values, **overrides})
    except ConfigError as exc:
        var = ENV_PREFIX + exc.field.upper()
        raise ValueError(exc.named(var) + ": fix or unset the variable" if var in environ else str(exc)) from None
