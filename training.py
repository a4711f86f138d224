"""The training run around the course's loop: optimizer and one-cycle schedule, the weight average (EMA), the
loss, the arithmetic precision, the resumable training state, and `fit`, which runs util.train / util.test for
every epoch of a TrainConfig. The notebook writes the same run out cell by cell.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

import datasets
from augment import NOT_A_DIGIT_LABEL
from config import TrainConfig
from model import Net
from threads import FollowFreeCores
from util import set_seed, test, train

if not hasattr(datasets, "load_data"):  # another package named `datasets` (e.g. Hugging Face's) came first
    raise ImportError(
        f"`import datasets` found {getattr(datasets, '__file__', datasets)!r}, not this project's datasets.py. "
        "Import the project as the package s6 (`import s6` after `sys.path.append('/path/to/repo')` or "
        "`pip install -e /path/to/repo`), or put the repository first: `sys.path.insert(0, '/path/to/repo')`."
    )


def build(cfg: TrainConfig, device: torch.device) -> tuple[Net, object, object]:
    """Seed, then make a fresh (model, train_loader, test_loader) for `cfg` on `device`."""
    set_seed(cfg.seed)
    train_loader, test_loader = datasets.load_data(**cfg.loader_args(), device=device)
    return Net(cfg.model, cfg.input_norm).to(device), train_loader, test_loader


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


class EMA(AveragedModel):
    """An exponential moving average of a model's weights and BatchNorm statistics: PyTorch's AveragedModel (its
    `module`, `n_averaged` and state_dict), updated with the decay warming up as min(decay, (1 + n) / (10 + n))
    after n updates, so a short run's average is not dominated by the random initial weights.

    AveragedModel reads its step count back from a tensor at every update, which on a GPU waits for the device;
    this one counts the steps in Python and keeps `n_averaged` (on the CPU) equal to that count. The arithmetic is
    AveragedModel's with get_ema_multi_avg_fn's update: a copy at the first step, then a lerp.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__(model, use_buffers=True)
        self.decay, self.steps = decay, 0

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        ours = [*self.module.parameters(), *self.module.buffers()]
        theirs = [p.detach() for p in (*model.parameters(), *model.buffers())]
        if self.steps == 0:
            for mine, other in zip(ours, theirs):
                mine.copy_(other)
        else:
            decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
            floats = [(mine, other) for mine, other in zip(ours, theirs) if mine.is_floating_point()]
            torch._foreach_lerp_([m for m, _ in floats], [o for _, o in floats], 1 - decay)
            for mine, other in zip(ours, theirs):  # integer buffers (BatchNorm's batch count)
                if not mine.is_floating_point():
                    mine.copy_(mine * decay + other * (1 - decay))
        self.steps += 1
        self.n_averaged.fill_(self.steps)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.steps = int(self.n_averaged)  # a resumed average goes on counting where it stopped


def make_ema(model: nn.Module, decay: float) -> EMA | None:
    """The weight average that is tested and saved (EMA), or None if `decay` is 0 (the raw weights are tested)."""
    return EMA(model, decay) if decay else None


def native_bfloat16(device: torch.device | str) -> bool:
    """Whether `device` computes bfloat16 natively: a GPU of compute capability 8.0 or later, a CPU with AVX-512 BF16
    or AMX. Elsewhere bfloat16 is emulated and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """A TrainConfig.precision as it runs on `device`: "auto" becomes bfloat16 or float32."""
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    return precision


def apply_precision(precision: str, device: torch.device | str) -> torch.dtype | None:
    """Set up a TrainConfig.precision for training on `device` -> the autocast dtype (None: float32).

    On CUDA a fixed seed gives a fixed history only with deterministic algorithms (cuDNN's among them) and without
    TF32, which Ampere and later GPUs use for convolutions by default: both are set here, TF32 allowed only for
    "tf32". bfloat16 is refused on a GPU without native bfloat16 (emulated, it is slower than float32).
    """
    device, precision = torch.device(device), resolve_precision(precision, device)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs
        torch.use_deterministic_algorithms(True, warn_only=True)  # deterministic kernels; warn where none exists
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
        if precision == "bfloat16" and not native_bfloat16(device):
            major, minor = torch.cuda.get_device_capability(device)
            raise ValueError(f"precision bfloat16 needs a GPU with native bfloat16 (compute capability 8.0 or later); "
                             f"{torch.cuda.get_device_name(device)} has {major}.{minor}: use float32")
    elif precision == "tf32":
        raise ValueError(f"precision tf32 is a setting of NVIDIA GPUs (Ampere or later), not of {device.type}: "
                         f"use float32")
    return torch.bfloat16 if precision == "bfloat16" else None


def training_criterion(cfg: TrainConfig) -> Callable:
    """The training loss on log-probabilities: NLL, label-smoothed if cfg.label_smoothing > 0; with generated
    non-digits in the batches (cfg.not_digits), plus their outlier-exposure term (`not_digit_loss`)."""
    base = F.nll_loss
    if cfg.label_smoothing:  # cross_entropy's log_softmax leaves log-probabilities unchanged, so this is exact
        base = functools.partial(F.cross_entropy, label_smoothing=cfg.label_smoothing)
    if cfg.not_digits:
        base = functools.partial(not_digit_loss, base=base, weight=cfg.not_digit_weight)
    return base


def not_digit_loss(output: torch.Tensor, target: torch.Tensor, base: Callable = F.nll_loss,
                   weight: float = 0.5) -> torch.Tensor:
    """`base` on the digits, plus `weight` x the cross-entropy from the uniform distribution to the model's
    output on the rows labelled NOT_A_DIGIT_LABEL (outlier exposure, Hendrycks et al. 2019): the model learns to
    spread its probability over a non-digit instead of naming one digit confidently."""
    digit = target != NOT_A_DIGIT_LABEL
    loss = base(output[digit], target[digit])
    if not digit.all():
        loss = loss - weight * output[~digit].mean()
    return loss


HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")


def format_epoch(history: dict[str, list], i: int = -1) -> str:
    """One fixed-width line for epoch `i` of `history`."""
    h = {k: v[i] for k, v in history.items()}
    return (
        f"epoch {h['epoch']:2d} | train loss {h['train_loss']:.4f} acc {h['train_acc']:6.2f}% "
        f"| test loss {h['test_loss']:.4f} acc {h['test_acc']:6.2f}% | {h['seconds']:5.1f}s"
    )


def training_state(epoch: int, history: dict, cfg: TrainConfig, model: nn.Module, ema: EMA | None, optimizer,
                   scheduler, train_loader) -> dict:
    """Everything a run needs to go on after `epoch` as if it had never stopped: weights, weight average,
    optimizer, schedule, the loader's generator and every random number generator, the history."""
    generator = getattr(train_loader, "generator", None)  # a plain DataLoader without one shuffles with torch's
    return {"epoch": epoch, "history": history, "config": cfg.to_dict(), "model": model.state_dict(),
            "ema": None if ema is None else ema.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "loader_rng": None if generator is None else generator.get_state(),
            "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_training_state(state: dict, model: nn.Module, ema: EMA | None, optimizer, scheduler,
                           train_loader) -> dict:
    """Put a training_state back into a freshly built run -> its history."""
    model.load_state_dict(state["model"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if state["loader_rng"] is not None:
        train_loader.generator.set_state(state["loader_rng"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return {key: list(values) for key, values in state["history"].items()}


def fit(model: nn.Module, device: torch.device, train_loader, test_loader, cfg: TrainConfig,
        on_epoch: Callable[[dict, nn.Module], None] | None = None, progress: bool | None = None,
        save_state: Callable[[dict], None] | None = None, resume: dict | None = None) -> dict[str, list]:
    """Train for cfg.epochs with the one-cycle recipe, testing after each epoch -> a fresh history.

    The same loop the notebook writes out cell by cell. With cfg.ema_decay the weight average is what is
    tested, and `model` ends holding it. Prints one line per epoch; calls `on_epoch(history, tested_model)`
    after each (e.g. to save a checkpoint), then `save_state(training_state(...))` (e.g. checkpoint.save_state).
    With `resume` (such a state), the run goes on after its epoch: on the same machine with fixed threads, the
    history and weights come out as an uninterrupted run's.
    """
    optimizer, scheduler = make_optimizer(model, cfg, steps_per_epoch=len(train_loader))
    ema = make_ema(model, cfg.ema_decay)
    tested = ema.module if ema is not None else model
    criterion = training_criterion(cfg)
    autocast = apply_precision(cfg.precision, device)
    history = {key: [] for key in HISTORY_KEYS}
    done = 0
    if resume is not None:
        history, done = restore_training_state(resume, model, ema, optimizer, scheduler, train_loader), resume["epoch"]
    paced = FollowFreeCores(train_loader, cfg.threads)
    for epoch in range(done + 1, cfg.epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train(model, device, paced, optimizer, criterion, scheduler=scheduler, ema=ema,
                                      progress=progress, autocast=autocast)
        test_loss, test_acc = test(tested, device, test_loader)
        row = dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                   test_acc=test_acc, lr=scheduler.get_last_lr()[0], seconds=time.perf_counter() - start)
        for key, value in row.items():
            history[key].append(value)
        print(format_epoch(history), flush=True)
        if on_epoch is not None:
            on_epoch(history, tested)
        if save_state is not None:
            save_state(training_state(epoch, history, cfg, model, ema, optimizer, scheduler, train_loader))
    if ema is not None:
        model.load_state_dict(ema.module.state_dict())
    return history
