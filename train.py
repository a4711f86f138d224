"""Train the S6 CNN on MNIST from the command line: `python train.py [--model 8k] [--seed 1] [--epochs 15] ...`.

Writes to a fresh folder (default runs/<model>-seed<SEED>, numbered -2, -3, ... if taken; --out DIR to
choose; an existing run there is replaced only with --force): checkpoint.pt (weights + config + metrics) and
state.pt (everything needed to go on), both replaced atomically after every epoch, then history.json,
curves.png, confusion.png and errors.png. Ctrl-C or SIGTERM stops within seconds, keeps the last finished epoch,
says how to continue and exits 130 (143 for SIGTERM); `python train.py --resume RUN_DIR` continues the run with
its own config, as if it had never stopped. A diverging run keeps its last epoch and exits 1. Expected errors
(no data, bad flags, unwritable folder, a damaged state) are one line on stderr and exit 2.
main() returns the final-epoch test accuracy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

from checkpoint import STATE_FILE, load_checkpoint, load_state, save_checkpoint, save_state
from config import TrainConfig, add_config_arguments, config_from_args, flag
from datasets import CorruptMNISTError, MNISTNotFoundError, ensure_mnist
from model import Net, count_parameters, probabilities
from threads import describe_threads, thread_policy
from training import build, fit, resolve_precision
from util import DivergedError, get_device, plot_acc_loss

RUNS = Path("runs")
RUN_FILES = ("checkpoint.pt", "history.json")  # a folder holding either is an earlier run


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    """Command-line flags -> (config, the parsed flags); one flag per TrainConfig field, checked there."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(p)
    p.add_argument("--out", type=Path, default=None, help="output folder (default: a fresh runs/<model>-seed<SEED>)")
    p.add_argument("--force", action="store_true", help="replace an earlier run in --out")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue the interrupted run in RUN_DIR from its last finished epoch, with its own config")
    a = p.parse_args(argv)
    if a.resume is not None:
        given = [flag(f.name) for f in dataclasses.fields(TrainConfig) if getattr(a, f.name) is not None]
        given += ["--preset"] * (a.preset is not None) + ["--out"] * (a.out is not None) + ["--force"] * a.force
        if given:
            p.error(f"--resume continues a run with its own config: drop {' '.join(given)}")
        return TrainConfig(), a  # the run's own config is read from its state by main()
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


def write_reports(out: Path, model: Net, run: dict, test_loader) -> None:
    """history.json and the figures for a finished (or interrupted) run."""
    from plots import confusion_matrix, plot_confusion, plot_misclassified  # here: training starts without matplotlib

    (out / "history.json").write_text(json.dumps(run, indent=1, allow_nan=False) + "\n")
    h = run["history"]
    plot_acc_loss(h["train_loss"], h["train_acc"], h["test_loss"], h["test_acc"]).savefig(out / "curves.png", dpi=80)
    images, labels = test_loader.dataset.inputs()
    probs = probabilities(model, images)
    plot_confusion(confusion_matrix(probs.argmax(1), labels)).savefig(out / "confusion.png", dpi=80)
    plot_misclassified(images, labels, probs).savefig(out / "errors.png", dpi=80)


class Stopped(KeyboardInterrupt):
    """SIGTERM (a preempted machine, `kill`, a cluster's scheduler), stopping the run as Ctrl-C does."""

    exit_code = 128 + signal.SIGTERM


def stop_on_sigterm(signum, frame) -> None:
    raise Stopped()


def process_age() -> float:
    """Seconds since this process started (Linux: from /proc, so the interpreter's start counts too)."""
    try:
        with open("/proc/self/stat") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return time.process_time()  # elsewhere: CPU time so far, close to it for a fresh process


def run_training(cfg: TrainConfig, out: Path, resume: dict | None = None) -> float:
    """Train `cfg` into the prepared folder `out` (continuing the training state `resume`, if given); return the
    final-epoch test accuracy (%)."""
    device = get_device()
    thread_policy(cfg.threads)
    print(f"data: {ensure_mnist(cfg.data_dir)} | {describe_threads(cfg.threads)}")
    model, train_loader, test_loader = build(cfg, device)
    print(f"Net({cfg.model!r}): {count_parameters(model):,} parameters | writing to {out}/ | {cfg.to_dict()}")
    if resume is not None:
        print(f"resuming after epoch {resume['epoch']} of {cfg.epochs}")
    start, startup = time.perf_counter(), process_age()
    print(f"ready to train {startup:.1f} s after start", flush=True)
    completed: dict = {}  # the history as of the last finished epoch, kept for Ctrl-C
    tested = model  # the weights that were tested and saved: the average when cfg.ema_decay > 0

    def checkpoint(history: dict, tested_model: Net) -> None:
        nonlocal tested
        save_checkpoint(out / "checkpoint.pt", tested_model, cfg, history)
        completed.update(history)
        tested = tested_model

    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    exit_code = 0
    try:
        history = fit(model, device, train_loader, test_loader, cfg, on_epoch=checkpoint, resume=resume,
                      save_state=lambda state: save_state(out / STATE_FILE, state))
    except KeyboardInterrupt as exc:
        history, exit_code = completed or (resume or {}).get("history", {}), getattr(exc, "exit_code", 130)
        done = len(history.get("epoch", []))
        print(f"\ninterrupted after {done} complete epoch(s) of {cfg.epochs}"
              + (f"; continue with: python train.py --resume {out}" if done else ""), file=sys.stderr)
        if not completed:  # nothing new since the start (or the resumed epoch): the folder holds what it held
            raise SystemExit(exit_code) from None
        # The weights moved on after the last saved epoch: report on what the checkpoint holds.
        tested.load_state_dict(load_checkpoint(out / "checkpoint.pt", device)[0].state_dict())
    except DivergedError as exc:
        kept = f"kept {out / 'checkpoint.pt'} from epoch {completed['epoch'][-1]}" if completed else "nothing saved"
        print(f"error: {exc} ({kept})", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    run = {
        "config": cfg.to_dict(),
        "model": cfg.model,
        "device": str(device),
        "precision": resolve_precision(cfg.precision, device),  # what "auto" became here
        "parameters": count_parameters(model),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "startup_seconds": round(startup, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "resumed_after_epoch": None if resume is None else resume["epoch"],
        "history": history,
    }
    write_reports(out, tested, run, test_loader)
    print(f"final test accuracy {history['test_acc'][-1]:.2f}% | {run['wall_seconds']:.1f}s | "
          f"peak RSS {run['peak_rss_mb']:.0f} MB | wrote {out}/")
    if exit_code:
        raise SystemExit(exit_code)
    return history["test_acc"][-1]


def main(argv: list[str] | None = None) -> float:
    """Train with the given flags; return the final-epoch test accuracy (%). User errors exit 2 with one line."""
    cfg, a = parse_args(argv)
    out, created = None, False
    try:
        if a.resume is not None:
            state = load_state(a.resume / STATE_FILE)
            cfg = TrainConfig(**state["config"])
            if state["epoch"] >= cfg.epochs:
                print(f"{a.resume} finished all {cfg.epochs} epochs: nothing to resume (its weights: "
                      f"{a.resume / 'checkpoint.pt'})")
                return state["history"]["test_acc"][-1]
            return run_training(cfg, a.resume, resume=state)
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
