"""The sweeps behind the claims, declared as data: each one a set of train.py flag rows run over seeds.

A run is results/<sweep>/<row>-seed<N>.json (seed<N>.json for a sweep of one recipe). Every row spells its levers
out, so it keeps its meaning when a default moves; `already_done` says whether a committed result still stands for
the flags a row gives today.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

SEEDS = (0, 1, 2, 3, 4)  # every accuracy claim is over these five seeds
ABLATION_SEEDS = (0, 1)  # screening proxy: two seeds; a winner is confirmed on SEEDS
ANSWER_SIZES = ("15k", "8k", "4k")  # model.SIZES for reading digits; the 60k only refuses

NO_ROBUSTNESS_LEVERS = ["--shift", "0", "--elastic", "0", "--noise", "0", "--erase", "0", "--not-digits", "0",
                        "--input-norm", "none"]
# The default recipe before the robustness levers: the sizes table measures it.
PREVIOUS = ["--epochs", "15", "--stroke-prob", "0.1", *NO_ROBUSTNESS_LEVERS]
# The seed-faithful recipe: PREVIOUS without the redrawn strokes, i.e. the seed project's data on this model.
FAITHFUL = ["--epochs", "15", "--stroke-prob", "0", *NO_ROBUSTNESS_LEVERS]


def recipe(epochs: int, ema: float, wd: float, redraw: float, *more: str) -> list[str]:
    """train.py flags with every lever of the recipe explicit, so a row means the same when defaults move."""
    return ["--epochs", str(epochs), "--ema-decay", str(ema), "--weight-decay", str(wd), "--stroke-prob", str(redraw),
            *NO_ROBUSTNESS_LEVERS, *more]


ABLATION = {  # name -> train.py flags; "base" is the seed project's recipe on this model
    "base": recipe(9, 0, 0, 0),
    "ema": recipe(9, 0.999, 0, 0),
    "ema+ls0.1": recipe(9, 0.999, 0, 0, "--label-smoothing", "0.1"),
    "ema+lr0.1": recipe(9, 0.999, 0, 0, "--lr", "0.1"),
    "ema+lr0.025": recipe(9, 0.999, 0, 0, "--lr", "0.025"),
    "e15": recipe(15, 0, 0, 0),
    "e15+ema": recipe(15, 0.999, 0, 0),
    "e15+ema+wd5e-4": recipe(15, 0.999, 5e-4, 0),
    "e15+ema+lr0.1": recipe(15, 0.999, 0, 0, "--lr", "0.1"),
    "e15+ema+ls0.1": recipe(15, 0.999, 0, 0, "--label-smoothing", "0.1"),
    "e15+ema+bs64": recipe(15, 0.999, 0, 0, "--batch-size", "64"),
    "e15+ema+wd+redraw0.1": recipe(15, 0.999, 5e-4, 0.1),  # the recipe before the robustness levers
    "e15+ema+wd+redraw0.25": recipe(15, 0.999, 5e-4, 0.25),
    "e15+ema+wd+redraw0.5": recipe(15, 0.999, 5e-4, 0.5),
    "8k": recipe(15, 0.999, 5e-4, 0, "--model", "8k"),
    "8k+wd0": recipe(15, 0.999, 0, 0, "--model", "8k"),
}

# The robustness levers' ablation starts from the model that answered and refused at once before the rejection
# model existed (the default's levers, erasing 0.1, and generated non-digits), with 5,000 training digits held out.
ROBUST_BASE = ["--epochs", "18", "--stroke-prob", "0.1", "--input-norm", "minmax", "--shift", "1", "--elastic", "1",
               "--noise", "0.15", "--erase", "0.1", "--not-digits", "0.125"]
ROBUST_ABLATION = {  # name -> train.py flags after ROBUST_BASE
    "default": [],
    "-minmax": ["--input-norm", "none"],
    "-shift-elastic": ["--shift", "0", "--elastic", "0"],
    "-noise": ["--noise", "0"],
    "-erase": ["--erase", "0"],
    "-not-digits": ["--not-digits", "0"],
    "-erase-not-digits": ["--erase", "0", "--not-digits", "0"],
    "+letters": ["--not-digit-letters", "0.25"],
    "-not-digits-half-erase": ["--not-digits", "0", "--erase", "0.05"],  # the default recipe, with a holdout
    "-all": ["--input-norm", "none", "--shift", "0", "--elastic", "0", "--noise", "0", "--erase", "0",
             "--not-digits", "0"],  # the recipe before the robustness levers, at 18 epochs
}

# The shipped rejection model (checkpoints/s6-reject.pt): the default recipe on a network twice as wide, trained
# with generated non-digits (hand-written and printed letters among them) towards a uniform answer; its top
# probability says "not a digit" while the default model answers. Low-resolution images keep soft ink from reading
# as "not a digit", printed digits keep a 1 with a flag and a base from reading as a letter, smooth curves teach it
# the loops people scribble, and 18 epochs make it surer of digits, which pays for the curves. Each earlier recipe
# below is that one without its last lever: together they are the rejection recipe's ablation.
REJECT_PREVIOUS = ["--epochs", "12", "--not-digits", "0.25", "--not-digit-letters", "0.25", "--not-digit-printed",
                   "0.25", "--low-res", "0.2"]
REJECT_15K = [*REJECT_PREVIOUS, "--digit-printed", "0.25"]
REJECT_60K = [*REJECT_15K, "--model", "60k"]
REJECT = [*REJECT_60K, "--not-digit-curves", "0.5", "--epochs", "18"]

QUICK = ["--preset", "quick"]  # config.PRESETS["quick"]: 99.4% soonest on a laptop CPU
MORE_SEEDS = (5, 6, 7, 8, 9)  # a second seed set, never looked at while choosing

# sweep -> ({row: train.py flags}, seeds). A row named "" is a sweep of one recipe.
SWEEPS = {
    "sizes": ({size: [*PREVIOUS, "--model", size] for size in ANSWER_SIZES}, SEEDS),
    "ablation": (ABLATION, ABLATION_SEEDS),
    "robust-ablation": ({name: [*ROBUST_BASE, *flags, "--holdout", "5000"] for name, flags in ROBUST_ABLATION.items()},
                        ABLATION_SEEDS),
    "recipe": ({"": []}, SEEDS),  # the default recipe, with robustness.py's figures
    "reject": ({"": REJECT}, SEEDS),  # the shipped rejection model, figures at its own threshold
    "reject-60k": ({"": REJECT_60K}, SEEDS),  # without the smooth scribbles and the longer training
    "reject-15k": ({"": REJECT_15K}, SEEDS),  # ... and without the width
    "reject-previous": ({"": REJECT_PREVIOUS}, SEEDS),  # ... and without the printed digits
    "reject-no-low-res": ({"": [*REJECT_PREVIOUS, "--low-res", "0"]}, SEEDS),  # ... and without low resolution
    "faithful": ({"": FAITHFUL}, SEEDS),  # the seed project's recipe on this model
    # the quick recipe as it runs here (bfloat16 where native) and where the CPU lacks bfloat16 (float32)
    "quick": ({"": QUICK, "float32": [*QUICK, "--precision", "float32"]}, SEEDS),
    "quick-more-seeds": ({"": QUICK}, MORE_SEEDS),
    # the default recipe on the small sizes, and the course's 15 epochs for the 8k
    "small": ({"8k": ["--model", "8k"], "4k": ["--model", "4k"], "8k-e15": ["--model", "8k", "--epochs", "15"]}, SEEDS),
}
EVALUATED = ("recipe", "faithful", "robust", "reject")  # sweeps (by prefix) whose runs get robustness figures


def sweep_runs(sweep: str, seeds: tuple[int, ...] | None = None) -> dict[str, list[str]]:
    """The runs of a named sweep: result name -> train.py flags."""
    rows, default_seeds = SWEEPS[sweep]
    return {f"{row}-seed{s}" if row else f"seed{s}": [*flags, "--seed", str(s)]
            for row, flags in rows.items() for s in seeds or default_seeds}


def flag_set_runs(flag_sets: list[str], seeds: tuple[int, ...] | None = None) -> dict[str, list[str]]:
    """Free-form runs (`experiments flags NAME ...`): each quoted flag set, per seed, named after its flags."""
    runs = {}
    for text in flag_sets:
        flags = shlex.split(text)
        for s in seeds or (None,):
            run_flags = flags if s is None else [*flags, "--seed", str(s)]
            name = re.sub(r"[^A-Za-z0-9.+=-]+", "_", " ".join(f.lstrip("-") for f in run_flags)).strip("_")
            runs[name or "default"] = run_flags
    return runs


def run_flags(run: dict) -> list[str]:
    """The train.py flags a result file's run was trained with (from its recorded command)."""
    return shlex.split(run["command"].split("train.py ", 1)[1])


def verdict_below(flags: list[str]) -> float:
    """The top probability under which a run's own verdict is "not a digit": runs of the 60k rejection recipe (the
    shipped one adds flags to it) at checkpoint.REJECT_BELOW, every other run at the answering model's own."""
    from checkpoint import OWN_REJECT_BELOW, REJECT_BELOW

    return REJECT_BELOW if flags[: len(REJECT_60K)] == REJECT_60K else OWN_REJECT_BELOW


MACHINE_FIELDS = ("data_dir", "threads")  # where and how fast a run goes, not what it computes


def comparable_config(flags: list[str]) -> dict:
    """The TrainConfig train.py would run for `flags`, without the machine-specific fields."""
    import train

    cfg, _ = train.parse_args(flags)
    return {k: v for k, v in cfg.to_dict().items() if k not in MACHINE_FIELDS}


def same_config(recorded: dict, flags: list[str]) -> bool:
    """Whether a run's recorded config is the one `flags` give today, where and how fast it ran aside."""
    return {k: v for k, v in recorded.items() if k not in MACHINE_FIELDS} == comparable_config(flags)


def already_done(path: Path, flags: list[str]) -> bool:
    """Whether `path` holds a finished run made with the config `flags` give today."""
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    config = run.get("config", {})
    return same_config(config, flags) and len(run.get("history", {}).get("test_acc", [])) == config["epochs"]
