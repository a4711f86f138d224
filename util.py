"""Training utilities the notebook imports: seed and device, one-epoch `train` / `test`, the `fit` loop, curves.

Every function takes what it needs and returns its result; nothing here keeps state between calls.
(The original project kept its loss/accuracy lists at module level, so re-running the notebook's
training cell appended a second run to the first: those were its "periodic spikes".)

The course's calls work as written: `train(model, device, train_loader, optimizer, criterion)` and
`test(model, device, test_loader, criterion)` return an `EpochResult(loss, acc)`; `criterion` may be left
out (the model returns log-probabilities, so NLL is the loss); anything else is passed by keyword.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import random
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

import datasets as _datasets
from augment import NOT_A_DIGIT

if not hasattr(_datasets, "load_data"):  # another package named `datasets` (e.g. Hugging Face's) came first
    raise ImportError(
        f"`import datasets` found {getattr(_datasets, '__file__', _datasets)!r}, not this project's datasets.py. "
        "Import the project as the package s6 (`import s6` after `sys.path.append('/path/to/repo')` or "
        "`pip install -e /path/to/repo`), or put the repository first: `sys.path.insert(0, '/path/to/repo')`."
    )

from checkpoint import load_checkpoint as load_checkpoint  # noqa: E402  (re-exported: documented here)
from checkpoint import save_checkpoint as save_checkpoint  # noqa: E402
from config import TrainConfig, config_from_env  # noqa: E402, F401  (re-exported: the notebook reads them here)
from datasets import MEAN, STD, load_data  # noqa: E402
from model import NUM_CLASSES, Net  # noqa: E402


def set_seed(seed: int) -> None:
    """Seed Python and torch (all devices) once, before building the model and the loaders."""
    random.seed(seed)
    torch.manual_seed(seed)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else platform's guess: results name the hardware."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def process_age() -> float:
    """Seconds since this process started (Linux: from /proc, so the interpreter's start counts too)."""
    try:
        with open("/proc/self/stat") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return time.process_time()  # elsewhere: CPU time so far, close to it for a fresh process


FIRST_LOOK, LOOK_EVERY = 0.25, 1.0  # s: a first look at the other programs' load soon, then once a second


class CoreWatch:
    """How many cores other programs leave free, from /proc/stat (Linux): the machine's busy time minus ours.

    torch's intra-op threads spin-wait for each other, so two threads on a 2-core laptop where a browser or
    a notebook server takes one core are several times slower than one thread. `free()` answers for the
    time since the last call.
    """

    def __init__(self) -> None:
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.last = self._read()
        self.looks = 0

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None  # not Linux: no measurement, threads stay as they are
        hz = os.sysconf("SC_CLK_TCK")
        busy = (sum(ticks) - ticks[3] - ticks[4]) / hz  # all but idle and iowait, in core-seconds
        own = sum(os.times()[:2])
        return time.monotonic(), busy, own

    def free(self) -> int | None:
        """Cores not used by other programs since the last look (at least 1); None if unknown or too soon.

        The first look comes FIRST_LOOK seconds after the start, the next ones every LOOK_EVERY.
        """
        every = FIRST_LOOK if self.looks == 0 else LOOK_EVERY
        if self.last is None or time.monotonic() - self.last[0] < every:
            return None
        now = self._read()
        if now is None:
            return None
        wall = now[0] - self.last[0]
        others = max(0.0, (now[1] - self.last[1]) - (now[2] - self.last[2])) / wall
        self.last, self.looks = now, self.looks + 1
        return max(1, min(self.cores, self.cores - math.floor(others + 0.5)))


def fixed_by(threads: int | None) -> str | None:
    """What fixes torch's thread count: "--threads" (an int given), "OMP_NUM_THREADS", or None (automatic)."""
    if threads is not None:
        return "--threads"
    return "OMP_NUM_THREADS" if os.environ.get("OMP_NUM_THREADS") else None


def thread_policy(threads: int | None) -> CoreWatch | None:
    """Apply `threads` (an int fixes torch's intra-op threads) -> a CoreWatch when they follow the free cores.

    None means automatic, unless OMP_NUM_THREADS is set, which fixes them as the user asked.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    return CoreWatch() if fixed_by(threads) is None else None


def follow_free_cores(watch: CoreWatch | None) -> None:
    """Set torch's threads to the cores other programs left free since the last look, when it is time to look."""
    free = watch.free() if watch is not None else None
    if free is not None and free != torch.get_num_threads():
        torch.set_num_threads(free)


def describe_threads(threads: int | None) -> str:
    """One line for a run's start (after thread_policy): the thread count and where it comes from."""
    source = fixed_by(threads)
    if source is not None:
        return f"threads: {torch.get_num_threads()} ({source})"
    return (f"threads: {torch.get_num_threads()}, following the cores other programs leave free "
            f"(--threads N fixes them)")


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
    train_loader, test_loader = load_data(**cfg.loader_args(), device=device)
    return Net(cfg.model, cfg.input_norm).to(device), train_loader, test_loader


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


def apply_precision(precision: str, device: torch.device | str) -> torch.dtype | None:
    """Set up a TrainConfig.precision for training on `device` -> the autocast dtype (None: float32).

    On CUDA a fixed seed gives a fixed history only with deterministic algorithms (cuDNN's among them) and without
    TF32, which Ampere and later GPUs use for convolutions by default: both are set here, TF32 allowed only for
    "tf32". bfloat16 is refused on a GPU without native bfloat16 (emulated, it is slower than float32).
    """
    device = torch.device(device)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs
        torch.use_deterministic_algorithms(True, warn_only=True)  # deterministic kernels; warn where none exists
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
        if precision == "bfloat16" and not torch.cuda.is_bf16_supported(including_emulation=False):
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
    output on the rows labelled NOT_A_DIGIT (outlier exposure, Hendrycks et al. 2019): the model learns to
    spread its probability over a non-digit instead of naming one digit confidently."""
    digit = target != NOT_A_DIGIT
    loss = base(output[digit], target[digit])
    if not digit.all():
        loss = loss - weight * output[~digit].mean()
    return loss


class EpochResult(NamedTuple):
    """One pass's mean loss and accuracy (%): `r.loss`, `r.acc`, or `loss, acc = r` (in that order)."""

    loss: float
    acc: float


class DivergedError(FloatingPointError):
    """Training diverged: a batch loss was not finite or exploded; the weights are no longer usable."""


DIVERGED_LOSS = 100.0  # nats: chance is ln 10 = 2.3 and healthy runs never pass ~5; above this a run is lost
TRAIN_CALL = "train(model, device, train_loader, optimizer, criterion=F.nll_loss, *, scheduler=None, ema=None)"
TEST_CALL = "test(model, device, test_loader, criterion=F.nll_loss)"


def _check_call(call: str, model, criterion, extra: tuple, optimizer=None, training: bool = False) -> None:
    """Refuse a call in another course's convention before anything runs, saying what to write instead."""
    name = call.split("(")[0]
    if extra:
        given = ", ".join(type(x).__name__ for x in extra)
        raise TypeError(
            f"{name}() got {len(extra)} positional argument(s) too many ({given}). Call it as {call}. "
            f"Loss and accuracy are returned, not collected into lists you pass: "
            f"`loss, acc = {name}(...)`, then append them to your own lists."
            + (" Pass scheduler= and ema= by keyword." if training else "")
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name}()'s first argument must be the model (an nn.Module), got {type(model).__name__}. "
                        f"Call it as {call}.")
    if training and not (hasattr(optimizer, "step") and hasattr(optimizer, "zero_grad")):
        raise TypeError(f"train()'s fourth argument must be the optimizer (e.g. torch.optim.SGD), got "
                        f"{type(optimizer).__name__}. Call it as {call}.")
    if not callable(criterion):
        raise TypeError(
            f"{name}()'s criterion must be a loss function such as F.nll_loss or nn.NLLLoss(), got "
            f"{type(criterion).__name__} {criterion!r}. The arguments are (model, device, loader"
            f"{', optimizer' if training else ''}, criterion); an epoch number is not one of them: call it as {call}."
        )


def _bar(loader, desc: str, disable: bool | None):
    # disable=None lets tqdm hide itself when output is not a terminal or notebook (CI logs stay short).
    return tqdm(loader, desc=desc, leave=False, disable=disable, mininterval=1.0)


def train(model: nn.Module, device: torch.device | str, train_loader, optimizer: torch.optim.Optimizer,
          criterion: Callable = F.nll_loss, *extra, scheduler=None, ema: AveragedModel | None = None,
          progress: bool | None = None, threads: int | None = None, autocast: torch.dtype | None = None) -> EpochResult:
    """Train one epoch -> EpochResult(mean loss, accuracy %). Steps `scheduler` and updates `ema` after each batch.

    Arguments past `criterion` are keyword-only: a call in another convention (history lists or an epoch
    number passed positionally) is refused before any weight changes. Raises DivergedError before a step
    that would apply a non-finite or exploded loss. `threads` fixes torch's intra-op threads; by default
    (and without OMP_NUM_THREADS) they follow the cores other programs leave free, looked at after FIRST_LOOK
    seconds and then every LOOK_EVERY, so a busy laptop does not make training collapse. `autocast` (e.g.
    torch.bfloat16) runs the forward pass and loss in that precision.

    The step waits for the device once, for the divergence check; loss and accuracy are summed on the device
    (in float64 and integers: the same sums as Python's) and read once at the end of the epoch.
    """
    _check_call(TRAIN_CALL, model, criterion, extra, optimizer, training=True)
    watch = thread_policy(threads)
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct, seen = (torch.zeros((), dtype=torch.int64, device=device) for _ in range(2))
    bar = _bar(train_loader, "train", None if progress is None else not progress)
    shown = time.monotonic()
    for data, target in bar:
        data, target = data.to(device, non_blocking=True), target.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(torch.device(device).type, dtype=autocast, enabled=autocast is not None):
            output = model(data)
            loss = criterion(output, target)
        loss.backward()  # queued before the step's one wait, so the device works while the host checks the loss
        value = loss.detach()
        if not bool(torch.isfinite(value) & (value <= DIVERGED_LOSS)):
            lr = optimizer.param_groups[0]["lr"]
            raise DivergedError(
                f"training diverged: batch loss {value.item():.4g} after {int(seen)} images of this epoch (lr "
                f"{lr:.4g}). Lower the learning rate (--lr); the last completed epoch's checkpoint is kept."
            )
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        digits = (target != NOT_A_DIGIT).sum()  # generated non-digits are not counted as images seen
        loss_sum += value.double() * digits
        correct += (output.argmax(1) == target).sum()
        seen += digits
        if not bar.disable and time.monotonic() - shown >= 1.0:  # reading the sums waits for the device
            bar.set_postfix(loss=f"{float(loss_sum) / int(seen):.4f}", acc=f"{100 * int(correct) / int(seen):.2f}")
            shown = time.monotonic()
        follow_free_cores(watch)
    bar.close()
    seen = int(seen)
    return EpochResult(float(loss_sum) / seen, 100.0 * int(correct) / seen)


@torch.inference_mode()
def test(model: nn.Module, device: torch.device | str, test_loader, criterion: Callable = F.nll_loss,
         *extra) -> EpochResult:
    """Evaluate without gradients -> EpochResult(mean loss per sample, accuracy %)."""
    _check_call(TEST_CALL, model, criterion, extra)
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for data, target in test_loader:
        data, target = data.to(device, non_blocking=True), target.to(device, non_blocking=True)
        output = model(data)
        loss_sum += criterion(output, target).item() * len(target)  # mean over batch -> sum
        correct += get_correct_pred_count(output, target)
        seen += len(target)
    return EpochResult(loss_sum / seen, 100.0 * correct / seen)


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
    for epoch in range(done + 1, cfg.epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train(model, device, train_loader, optimizer, criterion,
                                      scheduler=scheduler, ema=ema, progress=progress, threads=cfg.threads,
                                      autocast=autocast)
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


# --- figures: the course's 2x2 training curves, digit grids, the confusion matrix and the mistakes gallery ---------
# matplotlib Figures made without pyplot: they work headless, never leak open windows, and a notebook shows the
# returned figure. Save one with `fig.savefig(path)`.


def plot_acc_loss(train_losses, train_acc, test_losses, test_acc) -> Figure:
    """The original 2x2 panel (train loss, test loss / train acc, test acc against epoch) -> Figure."""
    fig = Figure(figsize=(12, 8))
    axs = fig.subplots(2, 2)
    panels = [(train_losses, "Training Loss"), (test_losses, "Test Loss"),
              (train_acc, "Training Accuracy (%)"), (test_acc, "Test Accuracy (%)")]
    for ax, (values, title) in zip(axs.flat, panels):
        ax.plot(range(1, len(values) + 1), values, marker="o")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers: no 1.2, 1.4, ...
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def image_grid(images: torch.Tensor, titles: list[str], ncols: int = 8, suptitle: str | None = None) -> Figure:
    """A Figure showing normalised (N, 1, 28, 28) `images` as digits, one title each, `ncols` per row."""
    nrows = max(1, math.ceil(len(titles) / ncols))
    fig = Figure(figsize=(1.3 * ncols, 1.5 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow((image[0].cpu() * STD + MEAN).numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_samples(loader, n: int = 24, ncols: int = 8) -> Figure:
    """A Figure with the first `n` images of one batch from `loader`, titled with their labels."""
    images, labels = next(iter(loader))
    return image_grid(images[:n], [str(int(y)) for y in labels[:n]], ncols)


def plot_confusion(matrix: torch.Tensor) -> Figure:
    """The confusion matrix as an annotated heat map with per-class accuracy on the y labels -> Figure."""
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


def plot_misclassified(images: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, n: int = 40,
                       ncols: int = 10) -> Figure:
    """A gallery of up to `n` misclassified images, most confident mistakes first, titled true -> pred (p)."""
    confidence, predicted = probs.max(1)
    wrong = (predicted != labels).nonzero().flatten()
    wrong = wrong[confidence[wrong].argsort(descending=True)][:n]
    titles = [f"{int(labels[i])} → {int(predicted[i])} ({confidence[i]:.2f})" for i in wrong.tolist()]
    summary = f"{(predicted != labels).sum()} misclassified of {len(labels)}; {len(wrong)} most confident shown"
    return image_grid(images[wrong], titles, ncols, summary)
