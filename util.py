"""The course's training utilities: seed and device, one epoch of `train` and of `test`, and the curves.

The course's calls work as written: `train(model, device, train_loader, optimizer, criterion)` and
`test(model, device, test_loader, criterion)` return an `EpochResult(loss, acc)`; `criterion` may be left
out (the model returns log-probabilities, so NLL is the loss); anything else is passed by keyword. Nothing
here keeps state between calls: each function takes what it needs and returns its result.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from augment import NOT_A_DIGIT_LABEL

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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


def get_correct_pred_count(prediction: torch.Tensor, labels: torch.Tensor) -> int:
    """Number of rows of `prediction` (N, classes) whose argmax equals `labels` (N,)."""
    return int((prediction.argmax(dim=1) == labels).sum())


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
          progress: bool | None = None, autocast: torch.dtype | None = None) -> EpochResult:
    """Train one epoch -> EpochResult(mean loss, accuracy %). Steps `scheduler` and updates `ema` after each batch.

    Arguments past `criterion` are keyword-only: a call in another convention (history lists or an epoch
    number passed positionally) is refused before any weight changes. Raises DivergedError before a step
    that would apply a non-finite or exploded loss. `autocast` (e.g. torch.bfloat16) runs the forward pass and
    loss in that precision. To have torch's threads follow the cores a busy laptop leaves free, pass the loader
    as threads.FollowFreeCores(train_loader, None), as `fit` and the notebook do.

    The step waits for the device once, for the divergence check; loss and accuracy are summed on the device
    (in float64 and integers: the same sums as Python's) and read once at the end of the epoch.
    """
    _check_call(TRAIN_CALL, model, criterion, extra, optimizer, training=True)
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
        digits = (target != NOT_A_DIGIT_LABEL).sum()  # generated non-digits are not counted as images seen
        loss_sum += value.double() * digits
        correct += (output.argmax(1) == target).sum()
        seen += digits
        if not bar.disable and time.monotonic() - shown >= 1.0:  # reading the sums waits for the device
            bar.set_postfix(loss=f"{float(loss_sum) / int(seen):.4f}", acc=f"{100 * int(correct) / int(seen):.2f}")
            shown = time.monotonic()
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


def plot_acc_loss(train_losses, train_acc, test_losses, test_acc) -> Figure:
    """The original 2x2 panel (train loss, test loss / train acc, test acc against epoch) -> Figure."""
    from matplotlib.figure import Figure  # here, not at the top: training starts without loading matplotlib

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
