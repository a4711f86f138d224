"""Save and load trained weights (weights-only files that say what rebuilds them) and a run's resumable training
state, every file written atomically; the shipped models and the threshold of their "not a digit" verdict.
No training code here.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from config import TrainConfig
from model import SIZES, Net, count_parameters

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "s6.pt"  # the shipped model
# The shipped rejection model: a second Net trained with many generated non-digits, whose top probability decides
# "not a digit / not sure" while the model above names the digit (docs/robustness.md).
DEFAULT_REJECTOR = DEFAULT_CHECKPOINT.with_name("s6-reject.pt")
# Below these top probabilities the answer is "not a digit / not sure": the rejection model's, and without one the
# answering model's own. Each is the largest candidate that refuses at most 1% of held-out training digits on its
# model's screening runs (docs/robustness.md), never chosen on the test digits or the non-digit evaluation set: a
# wider model is surer of digits, so its threshold sits higher.
REJECT_BELOW = 0.6
OWN_REJECT_BELOW = 0.5
FORMAT = 1  # the layout of the saved dict; a file of another format is refused on load
STATE_FILE = "state.pt"  # in a run's folder: what `train.py --resume` continues from (training.training_state)
STATE_FORMAT = 1
STATE_KEYS = ("epoch", "history", "config", "model", "ema", "optimizer", "scheduler", "loader_rng", "torch_rng",
              "python_rng", "cuda_rng")


def is_digit(top_probability: float | torch.Tensor, below: float):
    """Whether a top probability is high enough to name a digit (works on a tensor of them too): `below` is
    REJECT_BELOW for a rejection model's, OWN_REJECT_BELOW for the answering model's own."""
    return top_probability >= below


def non_finite(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors in `state` that hold NaN or infinity."""
    return [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def save_checkpoint(path: str | os.PathLike, model: Net, cfg: TrainConfig, history: dict) -> None:
    """Write weights + what rebuilds and describes them; atomic, so a crash never leaves half a file."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if bad := non_finite(state):
        raise FloatingPointError(f"refusing to save non-finite weights ({', '.join(bad[:3])}) to {path}")
    payload = {
        "format": FORMAT,
        "arch": type(model).__name__,
        "model": model.size,
        "input_norm": model.input_norm,
        "parameters": count_parameters(model),
        "state_dict": state,
        "config": cfg.to_dict(),
        "history": history,
    }
    write_atomically(path, torch_bytes(payload))


def torch_bytes(payload: dict) -> bytes:
    """What torch.save writes for `payload`."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that a kill at any instant leaves either the old file or the new one whole: a
    temporary file beside it, flushed to disk, then renamed over it. Checkpoints, states, results and caches."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike = DEFAULT_CHECKPOINT,
                    device: torch.device | str = "cpu") -> tuple[Net, dict]:
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
    size = payload.get("model")
    if payload.get("arch") != Net.__name__ or size not in SIZES:
        raise ValueError(
            f"{path} holds a model of another architecture (arch={payload.get('arch')!r}, size={size!r}); "
            f"this model.py builds Net of sizes {', '.join(SIZES)}. Retrain with `python train.py`."
        )
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path} has checkpoint format {payload.get('format')!r}, this code reads format {FORMAT}: "
                         f"retrain with `python train.py` or check out the code that wrote it")
    model = Net(size, payload.get("input_norm", "none"))  # files from before the option had none
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


def save_state(path: str | os.PathLike, state: dict) -> None:
    """Write a run's training state (training.training_state), atomically."""
    write_atomically(path, torch_bytes({"format": STATE_FORMAT, **state}))


def load_state(path: str | os.PathLike) -> dict:
    """A training state written by save_state (weights only); a missing, damaged or foreign file is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: a run folder holds {STATE_FILE} once its first epoch has "
                                f"finished; start the run again without --resume")
    damaged = (f"{path} is damaged or not a training state written by train.py, so the run cannot be resumed: "
               f"start it again (python train.py ... --out {path.parent} --force); its checkpoint.pt, if any, "
               f"still holds the weights of its last finished epoch")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, overwritten, not a torch file
        raise ValueError(f"{damaged} ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or any(k not in state for k in STATE_KEYS):
        raise ValueError(damaged)
    return state
