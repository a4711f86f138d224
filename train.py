"""Train the S6 CNN on MNIST from the command line: `python train.py [--seed 1] [--epochs 9] ...`.

Writes to --out: checkpoint.pt (weights + config + metrics, replaced atomically after every epoch),
history.json, curves.png, confusion.png and errors.png. Ctrl-C stops cleanly and keeps the last
completed epoch's checkpoint. main() returns the final-epoch test accuracy.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

from model import Net, count_parameters
from util import (
    TrainConfig,
    build,
    confusion_matrix,
    fit,
    get_device,
    load_checkpoint,
    plot_acc_loss,
    plot_confusion,
    plot_misclassified,
    predictions,
    save_checkpoint,
)


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, Path]:
    """Command-line flags -> (config, output folder); defaults are TrainConfig's."""
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak one-cycle learning rate (default {d.lr})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    p.add_argument("--pipeline", choices=("fast", "torchvision"), default=d.pipeline, help="input pipeline")
    p.add_argument("--subset", type=int, default=d.subset, help="use only the first N images of each split")
    p.add_argument("--data-dir", default=d.data_dir, help="MNIST root (default: $MNIST_DATA_DIR, else ./data)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/seed<SEED>)")
    a = p.parse_args(argv)
    for name in ("epochs", "batch_size", "subset"):
        value = getattr(a, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if a.lr <= 0:
        p.error(f"--lr must be positive, got {a.lr}")
    cfg = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, seed=a.seed, pipeline=a.pipeline,
                      subset=a.subset, data_dir=a.data_dir)
    return cfg, a.out or Path("runs") / f"seed{a.seed}"


def write_reports(out: Path, model: Net, run: dict, test_loader, device: torch.device) -> None:
    """history.json and the figures for a finished (or interrupted) run."""
    (out / "history.json").write_text(json.dumps(run, indent=1) + "\n")
    h = run["history"]
    plot_acc_loss(h["train_loss"], h["train_acc"], h["test_loss"], h["test_acc"]).savefig(out / "curves.png", dpi=80)
    images, labels, probs = predictions(model, device, test_loader)
    plot_confusion(confusion_matrix(probs.argmax(1), labels)).savefig(out / "confusion.png", dpi=80)
    plot_misclassified(images, labels, probs).savefig(out / "errors.png", dpi=80)


def main(argv: list[str] | None = None) -> float:
    """Train with the given flags; return the final-epoch test accuracy (%)."""
    cfg, out = parse_args(argv)
    out.mkdir(parents=True, exist_ok=True)
    device = get_device()
    model, train_loader, test_loader = build(cfg, device)
    print(f"Net: {count_parameters(model):,} parameters | {cfg.to_dict()}")
    start = time.perf_counter()
    completed: dict = {}  # the history as of the last finished epoch, kept for Ctrl-C

    def checkpoint(history: dict) -> None:
        completed.update(history)
        save_checkpoint(out / "checkpoint.pt", model, cfg, history)

    try:
        history, interrupted = fit(model, device, train_loader, test_loader, cfg, on_epoch=checkpoint), False
    except KeyboardInterrupt:
        history, interrupted = completed, True
        print(f"\ninterrupted after {len(history.get('epoch', []))} complete epoch(s)", file=sys.stderr)
        if not history:
            raise SystemExit(130) from None
        model.load_state_dict(load_checkpoint(out / "checkpoint.pt", device)[0].state_dict())
    run = {
        "config": cfg.to_dict(),
        "device": str(device),
        "parameters": count_parameters(model),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "history": history,
    }
    write_reports(out, model, run, test_loader, device)
    print(f"final test accuracy {history['test_acc'][-1]:.2f}% | {run['wall_seconds']:.1f}s | "
          f"peak RSS {run['peak_rss_mb']:.0f} MB | wrote {out}/")
    if interrupted:
        raise SystemExit(130)
    return history["test_acc"][-1]


if __name__ == "__main__":
    main()
