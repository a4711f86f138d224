"""Train the S6 CNN on MNIST from the command line: `python train.py [--model 8k] [--seed 1] [--epochs 15] ...`.

Writes to a fresh folder (default runs/<model>-seed<SEED>, numbered -2, -3, ... if taken; --out DIR to
choose; an existing run there is replaced only with --force): checkpoint.pt (weights + config + metrics,
replaced atomically after every epoch), history.json, curves.png, confusion.png and errors.png. Ctrl-C stops
cleanly and keeps the last completed epoch's checkpoint; so does a diverging run, which exits 1.
Expected errors (no data, bad flags, unwritable folder) are one line on stderr and exit 2.
main() returns the final-epoch test accuracy.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from checkpoint import load_checkpoint, save_checkpoint
from config import FAST_ONLY, TrainConfig, add_config_arguments, config_from_args, flag
from datasets import CorruptMNISTError, MNISTNotFoundError, ensure_mnist
from model import Net, count_parameters
from util import (
    DivergedError,
    build,
    confusion_matrix,
    describe_threads,
    fit,
    get_device,
    plot_acc_loss,
    plot_confusion,
    plot_misclassified,
    predictions,
    process_age,
    thread_policy,
)

RUNS = Path("runs")
RUN_FILES = ("checkpoint.pt", "history.json")  # a folder holding either is an earlier run


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    """Command-line flags -> (config, the parsed flags); one flag per TrainConfig field, checked there."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(p)
    p.add_argument("--out", type=Path, default=None, help="output folder (default: a fresh runs/<model>-seed<SEED>)")
    p.add_argument("--force", action="store_true", help="replace an earlier run in --out")
    a = p.parse_args(argv)
    if a.pipeline not in (None, "fast"):
        off = [name for name in FAST_ONLY if getattr(a, name) is None and getattr(TrainConfig(), name)]
        for name in off:
            setattr(a, name, 0.0)
        if off:
            print(f"note: --pipeline {a.pipeline} has only the original augmentation, so "
                  f"{', '.join(flag(name) for name in off)} are 0 for this run", file=sys.stderr)
    return config_from_args(p, a), a


def output_folder(out: Path | None, cfg: TrainConfig, force: bool) -> tuple[Path, bool]:
    """The run's folder, created and checked writable before any training -> (folder, whether it was created).

    Never an earlier run unless `force`.
    """
    if out is None:  # the default is always a fresh folder: runs/15k-seed0, runs/15k-seed0-2, ...
        base = RUNS / f"{cfg.model}-seed{cfg.seed}"
        out = next(p for i in range(1, 10_000) if not (p := base if i == 1 else Path(f"{base}-{i}")).exists())
    elif out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder: pass a folder path")
    elif not force and any((out / name).exists() for name in RUN_FILES):
        raise ValueError(f"--out {out} already holds a run ({out / 'checkpoint.pt'}): pass --force to replace it, "
                         f"or another --out")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        raise ValueError(f"cannot write to output folder {out} ({exc.strerror}): choose a writable --out") from None
    return out, created


def write_reports(out: Path, model: Net, run: dict, test_loader, device: torch.device) -> None:
    """history.json and the figures for a finished (or interrupted) run."""
    (out / "history.json").write_text(json.dumps(run, indent=1, allow_nan=False) + "\n")
    h = run["history"]
    plot_acc_loss(h["train_loss"], h["train_acc"], h["test_loss"], h["test_acc"]).savefig(out / "curves.png", dpi=80)
    images, labels, probs = predictions(model, device, test_loader)
    plot_confusion(confusion_matrix(probs.argmax(1), labels)).savefig(out / "confusion.png", dpi=80)
    plot_misclassified(images, labels, probs).savefig(out / "errors.png", dpi=80)


def run_training(cfg: TrainConfig, out: Path) -> float:
    """Train `cfg` into the prepared folder `out`; return the final-epoch test accuracy (%)."""
    device = get_device()
    thread_policy(cfg.threads)
    print(f"data: {ensure_mnist(cfg.data_dir)} | {describe_threads(cfg.threads)}")
    model, train_loader, test_loader = build(cfg, device)
    print(f"Net({cfg.model!r}): {count_parameters(model):,} parameters | writing to {out}/ | {cfg.to_dict()}")
    start, startup = time.perf_counter(), process_age()
    print(f"ready to train {startup:.1f} s after start", flush=True)
    completed: dict = {}  # the history as of the last finished epoch, kept for Ctrl-C
    tested = model  # the weights that were tested and saved: the average when cfg.ema_decay > 0

    def checkpoint(history: dict, tested_model: Net) -> None:
        nonlocal tested
        save_checkpoint(out / "checkpoint.pt", tested_model, cfg, history)
        completed.update(history)
        tested = tested_model

    try:
        history, interrupted = fit(model, device, train_loader, test_loader, cfg, on_epoch=checkpoint), False
    except KeyboardInterrupt:
        history, interrupted = completed, True
        print(f"\ninterrupted after {len(history.get('epoch', []))} complete epoch(s)", file=sys.stderr)
        if not history:
            raise SystemExit(130) from None
        # The weights moved on after the last saved epoch: report on what the checkpoint holds.
        tested.load_state_dict(load_checkpoint(out / "checkpoint.pt", device)[0].state_dict())
    except DivergedError as exc:
        kept = f"kept {out / 'checkpoint.pt'} from epoch {completed['epoch'][-1]}" if completed else "nothing saved"
        print(f"error: {exc} ({kept})", file=sys.stderr)
        raise SystemExit(1) from None
    run = {
        "config": cfg.to_dict(),
        "model": cfg.model,
        "device": str(device),
        "parameters": count_parameters(model),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "startup_seconds": round(startup, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "history": history,
    }
    write_reports(out, tested, run, test_loader, device)
    print(f"final test accuracy {history['test_acc'][-1]:.2f}% | {run['wall_seconds']:.1f}s | "
          f"peak RSS {run['peak_rss_mb']:.0f} MB | wrote {out}/")
    if interrupted:
        raise SystemExit(130)
    return history["test_acc"][-1]


def main(argv: list[str] | None = None) -> float:
    """Train with the given flags; return the final-epoch test accuracy (%). User errors exit 2 with one line."""
    cfg, a = parse_args(argv)
    out, created = None, False
    try:
        out, created = output_folder(a.out, cfg, a.force)
        return run_training(cfg, out)
    except (MNISTNotFoundError, CorruptMNISTError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:  # a run that failed before its first epoch leaves no empty folder behind
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


if __name__ == "__main__":
    main()
