"""Training utilities: the default recipe, one-epoch train/test, the fit loop, seeding, device, plots.

Every function takes what it needs and returns its result; nothing here keeps state between calls.
(The original project kept its loss/accuracy lists at module level, so re-running the notebook's
training cell appended a second run to the first: those were its "periodic spikes".)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from datasets import DATA_ENV, image_grid, load_data
from model import DEFAULT_SIZE, NUM_CLASSES, SIZES, Net, count_parameters

CHECKPOINT_FORMAT = 1  # bump when the checkpoint layout changes


@dataclass
class TrainConfig:
    """The default recipe; train.py, the notebook and the tests all read these values."""

    model: str = DEFAULT_SIZE  # a key of model.SIZES: "15k" (default), "8k" or "4k" parameters
    epochs: int = 15  # full passes over the 60k training images; one-cycle schedule spans them all. 9 epochs
    #                   averaged 99.45%; 15 buy the margin (README: ablation and frontier tables)
    batch_size: int = 128  # images per step: small enough for many updates per epoch, big enough for 2 cores
    lr: float = 0.05  # peak learning rate of the one-cycle schedule (SGD, Nesterov momentum)
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 5e-4  # L2 on all weights: +0.04% over none at 15 epochs in the screening (2 seeds)
    warmup: float = 0.2  # fraction of steps spent rising to the peak lr, then cosine down to ~0
    ema_decay: float = 0.999  # per-step weight average used for testing and saving (horizon ~1000 steps,
    #                           ~2 epochs); 0 = evaluate the raw weights
    label_smoothing: float = 0.0  # share of the target spread over all classes; 0 = plain NLL
    stroke_prob: float = 0.1  # share of training digits redrawn with a random pen: handwriting 98.11 -> 98.61%
    seed: int = 0  # fixes initialisation, shuffling order and augmentation
    pipeline: str = "fast"  # "fast" (in-memory, batched augmentation) or "torchvision" (original PIL path)
    test_batch_size: int = 1000  # evaluation only: larger batches are faster and change nothing
    subset: int | None = None  # keep the first n images of each split (quick checks); None = all
    data_dir: str | None = None  # MNIST root; None = $MNIST_DATA_DIR, else ./data

    def to_dict(self) -> dict:
        """The config as a plain dict (stored in checkpoints and histories)."""
        return dataclasses.asdict(self)


ENV_OVERRIDES = {  # environment variable -> TrainConfig field, for the notebook (the tests run it small)
    "S6_MODEL": "model", "S6_EPOCHS": "epochs", "S6_BATCH_SIZE": "batch_size", "S6_SEED": "seed", "S6_SUBSET": "subset",
}


def config_from_env(environ: Mapping[str, str] = os.environ) -> TrainConfig:
    """TrainConfig's defaults, overridden by the S6_* variables that are set (and MNIST_DATA_DIR for data_dir)."""
    values: dict = {"data_dir": environ.get(DATA_ENV) or None}
    for var, field in ENV_OVERRIDES.items():
        text = environ.get(var, "").strip()
        if not text:
            continue
        if field == "model":
            if text not in SIZES:
                raise ValueError(f"{var}={text!r} is not a model size: use one of {', '.join(SIZES)}")
            values[field] = text
            continue
        lowest = 0 if field == "seed" else 1
        if not text.isdigit() or int(text) < lowest:
            raise ValueError(f"{var}={text!r} must be an integer >= {lowest}: fix or unset the variable")
        values[field] = int(text)
    return TrainConfig(**values)


def set_seed(seed: int) -> None:
    """Seed Python and torch (all devices) once, before building the model and the loaders."""
    random.seed(seed)
    torch.manual_seed(seed)


def get_device(verbose: bool = True) -> torch.device:
    """The best available device: cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if verbose:
        print(f"device: {device}")
    return device


def build(cfg: TrainConfig, device: torch.device) -> tuple[Net, object, object]:
    """Seed, then make a fresh (model, train_loader, test_loader) for `cfg` on `device`."""
    set_seed(cfg.seed)
    train_loader, test_loader = load_data(
        cfg.batch_size, cfg.data_dir, seed=cfg.seed, pipeline=cfg.pipeline, device=device,
        test_batch_size=cfg.test_batch_size, subset=cfg.subset, stroke_prob=cfg.stroke_prob,
    )
    return Net(cfg.model).to(device), train_loader, test_loader


def get_correct_pred_count(prediction: torch.Tensor, labels: torch.Tensor) -> int:
    """Number of rows of `prediction` (N, classes) whose argmax equals `labels` (N,)."""
    return int((prediction.argmax(dim=1) == labels).sum())


def make_optimizer(model: nn.Module, cfg: TrainConfig, steps_per_epoch: int):
    """SGD with Nesterov momentum and a per-batch one-cycle schedule for `cfg` -> (optimizer, scheduler)."""
    if cfg.epochs * steps_per_epoch < 10:
        raise ValueError(
            f"the one-cycle schedule needs at least 10 steps, got {cfg.epochs} epoch(s) x {steps_per_epoch} "
            f"batches: use more epochs, more images or a smaller batch size"
        )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch, pct_start=cfg.warmup
    )
    return optimizer, scheduler


def _bar(loader, desc: str, disable: bool | None):
    # disable=None lets tqdm hide itself when output is not a terminal or notebook (CI logs stay short).
    return tqdm(loader, desc=desc, leave=False, disable=disable, mininterval=1.0)


class DivergedError(FloatingPointError):
    """Training diverged: a batch loss was not finite or exploded; the weights are no longer usable."""


DIVERGED_LOSS = 100.0  # nats: chance is ln 10 = 2.3 and healthy runs never pass ~5; above this a run is lost


def train(
    model: nn.Module,
    device: torch.device,
    train_loader,
    optimizer: torch.optim.Optimizer,
    criterion: Callable,
    scheduler=None,
    progress: bool | None = None,
    ema: AveragedModel | None = None,
) -> tuple[float, float]:
    """Train one epoch; step `scheduler` and update `ema` after every batch if given -> (mean loss, accuracy %).

    Raises DivergedError before a step that would apply a non-finite or exploded loss.
    """
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    bar = _bar(train_loader, "train", None if progress is None else not progress)
    for data, target in bar:
        data, target = data.to(device, non_blocking=True), target.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        output = model(data)
        loss = criterion(output, target)
        value = loss.item()
        if not math.isfinite(value) or value > DIVERGED_LOSS:
            lr = optimizer.param_groups[0]["lr"]
            raise DivergedError(
                f"training diverged: batch loss {value:.4g} after {seen} images of this epoch (lr {lr:.4g}). "
                f"Lower the learning rate (--lr); the last completed epoch's checkpoint is kept."
            )
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        loss_sum += value * len(target)
        correct += get_correct_pred_count(output, target)
        seen += len(target)
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}", refresh=False)
    return loss_sum / seen, 100.0 * correct / seen


@torch.inference_mode()
def test(model: nn.Module, device: torch.device, test_loader, criterion: Callable) -> tuple[float, float]:
    """Evaluate without gradients -> (loss summed per sample / number of samples, accuracy %)."""
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for data, target in test_loader:
        data, target = data.to(device, non_blocking=True), target.to(device, non_blocking=True)
        output = model(data)
        loss_sum += criterion(output, target).item() * len(target)  # mean over batch -> sum
        correct += get_correct_pred_count(output, target)
        seen += len(target)
    return loss_sum / seen, 100.0 * correct / seen


def new_history() -> dict[str, list]:
    """An empty per-epoch history: one list per metric, owned by one run."""
    return {key: [] for key in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")}


def format_epoch(history: dict[str, list], i: int = -1) -> str:
    """One fixed-width line for epoch `i` of `history`."""
    h = {k: v[i] for k, v in history.items()}
    return (
        f"epoch {h['epoch']:2d} | train loss {h['train_loss']:.4f} acc {h['train_acc']:6.2f}% "
        f"| test loss {h['test_loss']:.4f} acc {h['test_acc']:6.2f}% | {h['seconds']:5.1f}s"
    )


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of `model`'s weights and BatchNorm statistics (PyTorch's AveragedModel).

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so a short run's average is not
    dominated by the random initial weights.
    """

    def warmed_up_ema(averaged: list, current: list, n_averaged: torch.Tensor) -> None:
        n = int(n_averaged)
        get_ema_multi_avg_fn(min(decay, (1 + n) / (10 + n)))(averaged, current, n_averaged)

    # use_buffers: average BatchNorm's running statistics too, so the average needs no extra pass to re-estimate them.
    return AveragedModel(model, multi_avg_fn=warmed_up_ema, use_buffers=True)


def training_criterion(cfg: TrainConfig) -> Callable:
    """The training loss on log-probabilities: NLL, label-smoothed if cfg.label_smoothing > 0."""
    if cfg.label_smoothing:  # cross_entropy's log_softmax leaves log-probabilities unchanged, so this is exact
        return functools.partial(nn.functional.cross_entropy, label_smoothing=cfg.label_smoothing)
    return nn.functional.nll_loss


def fit(
    model: nn.Module,
    device: torch.device,
    train_loader,
    test_loader,
    cfg: TrainConfig,
    on_epoch: Callable[[dict, nn.Module], None] | None = None,
    progress: bool | None = None,
) -> dict[str, list]:
    """Train for cfg.epochs with the one-cycle recipe, testing after each epoch -> a fresh history.

    With cfg.ema_decay the weight average is what is tested, and `model` ends holding it. Prints one line
    per epoch; calls `on_epoch(history, tested_model)` after each (e.g. to save a checkpoint).
    """
    optimizer, scheduler = make_optimizer(model, cfg, steps_per_epoch=len(train_loader))
    ema = make_ema(model, cfg.ema_decay) if cfg.ema_decay else None
    tested = ema.module if ema is not None else model
    criterion = training_criterion(cfg)
    history = new_history()
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train(model, device, train_loader, optimizer, criterion, scheduler, progress, ema)
        test_loss, test_acc = test(tested, device, test_loader, nn.functional.nll_loss)
        row = dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                   test_acc=test_acc, lr=scheduler.get_last_lr()[0], seconds=time.perf_counter() - start)
        for key, value in row.items():
            history[key].append(value)
        print(format_epoch(history), flush=True)
        if on_epoch is not None:
            on_epoch(history, tested)
    if ema is not None:
        model.load_state_dict(ema.module.state_dict())
    return history


def plot_acc_loss(train_losses, train_acc, test_losses, test_acc):
    """The original 2x2 panel (train loss, test loss / train acc, test acc against epoch) -> Figure."""
    from matplotlib.figure import Figure  # no pyplot: works headless and never leaks open figures

    fig = Figure(figsize=(12, 8))
    axs = fig.subplots(2, 2)
    panels = [(train_losses, "Training Loss"), (test_losses, "Test Loss"),
              (train_acc, "Training Accuracy (%)"), (test_acc, "Test Accuracy (%)")]
    for ax, (values, title) in zip(axs.flat, panels):
        ax.plot(range(1, len(values) + 1), values, marker="o")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def non_finite(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors in `state` that hold NaN or infinity."""
    return [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def save_checkpoint(path: str | os.PathLike, model: Net, cfg: TrainConfig, history: dict) -> None:
    """Write weights + what rebuilds and describes them; atomic, so a crash never leaves half a file."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if bad := non_finite(state):
        raise DivergedError(f"refusing to save non-finite weights ({', '.join(bad[:3])}) to {path}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "arch": type(model).__name__,
        "model": model.size,
        "parameters": count_parameters(model),
        "state_dict": state,
        "config": cfg.to_dict(),
        "history": history,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[Net, dict]:
    """Rebuild the trained Net of whichever size a train.py checkpoint holds (weights only) -> (model, payload)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist: train one with `python train.py` or pass its path")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors, truncated zip archives, non-torch files
        # torch's own message suggests weights_only=False, i.e. running the file's code: never for a foreign file.
        raise ValueError(
            f"{path} is not a checkpoint written by this project's train.py (it cannot be read as plain tensors: "
            f"{type(exc).__name__}). Do not load it with weights_only=False unless you trust its origin; "
            f"use checkpoints/s6.pt or train one with `python train.py`."
        ) from None
    state = payload.get("state_dict") if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a checkpoint written by train.py (no 'state_dict' of tensors)")
    size = payload.get("model", DEFAULT_SIZE)  # checkpoints from before the model family hold the default size
    if payload.get("arch") != Net.__name__ or size not in SIZES:
        raise ValueError(
            f"{path} holds a model of another architecture (arch={payload.get('arch')!r}, size={size!r}); "
            f"this model.py builds Net of sizes {', '.join(SIZES)}. Retrain with `python train.py`."
        )
    model = Net(size)
    expected = model.state_dict()
    mismatched = sorted(set(expected) ^ set(state)) or [k for k in expected if expected[k].shape != state[k].shape]
    if mismatched:
        raise ValueError(
            f"{path} holds weights that do not fit Net({size!r}) ({count_parameters(model):,} parameters; first "
            f"differing weights: {mismatched[:3]}). Retrain with `python train.py` or check out the code that wrote it."
        )
    if bad := non_finite(state):
        raise ValueError(f"{path} holds non-finite weights ({', '.join(bad[:3])}): the run that wrote it diverged")
    model.load_state_dict(state)
    return model.to(device).eval(), payload


@torch.inference_mode()
def predictions(model: nn.Module, device: torch.device, loader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run `model` over `loader` -> (images (N, 1, 28, 28) on the CPU, labels (N,), probabilities (N, 10))."""
    model.eval()
    images, labels, probs = [], [], []
    for data, target in loader:
        images.append(data.cpu())
        labels.append(target.cpu())
        probs.append(model(data.to(device)).exp().cpu())
    return torch.cat(images), torch.cat(labels), torch.cat(probs)


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """(classes, classes) counts: row = true class, column = predicted class."""
    index = labels.long() * num_classes + predicted.long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def plot_confusion(matrix: torch.Tensor):
    """The confusion matrix as an annotated heat map with per-class accuracy on the y labels -> Figure."""
    from matplotlib.figure import Figure

    n = matrix.shape[0]
    per_class = 100 * matrix.diag() / matrix.sum(1).clamp(min=1)
    fig = Figure(figsize=(7.5, 6.5))
    ax = fig.subplots()
    ax.imshow(torch.log1p(matrix.float()).numpy(), cmap="Blues")
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if i == j else "black")
    ax.set_xticks(range(n), [str(j) for j in range(n)])
    ax.set_yticks(range(n), [f"{i}  ({per_class[i]:.1f}%)" for i in range(n)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (per-class accuracy)")
    total, correct = int(matrix.sum()), int(matrix.diag().sum())
    ax.set_title(f"Confusion matrix: {correct}/{total} correct ({100 * correct / max(total, 1):.2f}%)")
    fig.tight_layout()
    return fig


def plot_misclassified(images: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, n: int = 40, ncols: int = 10):
    """A gallery of up to `n` misclassified images, most confident mistakes first, titled true -> pred (p)."""
    confidence, predicted = probs.max(1)
    wrong = (predicted != labels).nonzero().flatten()
    wrong = wrong[confidence[wrong].argsort(descending=True)][:n]
    titles = [f"{int(labels[i])} → {int(predicted[i])} ({confidence[i]:.2f})" for i in wrong.tolist()]
    summary = f"{(predicted != labels).sum()} misclassified of {len(labels)}; {len(wrong)} most confident shown"
    return image_grid(images[wrong], titles, ncols, summary)
