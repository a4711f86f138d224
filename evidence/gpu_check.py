"""One prepared check for a CUDA machine, a few minutes long: `make gpu-check` -> results/gpu.json.

Prints the GPU, its compute capability, torch's and CUDA's versions and whether the GPU has native bfloat16; runs
the tests marked `cuda`; trains two short runs with one seed and compares their histories; counts the host
synchronisations of a training step of the default recipe (torch.cuda.set_sync_debug_mode); trains the default
recipe on the full data and times it (seconds to the first epoch at 99.4% or more, seconds to the end, the final
accuracy). Without a CUDA GPU it says so and exits 0. Exits 1 if a test fails or the two runs differ.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "gpu.json"
SHORT = ["--epochs", "2", "--subset", "10000"]  # the two runs that must agree
SYNC_CHECK = dict(epochs=2, subset=4000)  # the default recipe on fewer images, for counting waits
TARGET = 99.4  # % test accuracy: the first epoch at or above it is timed


def machine() -> dict:
    device = torch.device("cuda")
    major, minor = torch.cuda.get_device_capability(device)
    return {"gpu": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}",
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "native_bfloat16": torch.cuda.is_bf16_supported(including_emulation=False)}


def cuda_tests() -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests"],
                          cwd=ROOT, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    return {"passed": proc.returncode == 0, "summary": lines[-1] if lines else proc.stderr.strip()[-300:],
            "seconds": round(time.perf_counter() - start, 1), "output_tail": "\n".join(lines[-30:])}


def train_py(args: list[str], out: Path) -> dict:
    """`python train.py ARGS --out OUT` -> its history.json (and the process's wall time)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "train.py", *args, "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True)
    if proc.returncode:
        raise RuntimeError(f"train.py {' '.join(args)} exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return {**json.loads((out / "history.json").read_text()), "process_seconds": time.perf_counter() - start}


def two_runs(tmp: Path) -> dict:
    runs = [train_py(SHORT, tmp / f"same-seed-{i}") for i in (1, 2)]
    keys = ("train_loss", "train_acc", "test_loss", "test_acc")
    histories = [{k: r["history"][k] for k in keys} for r in runs]
    return {"flags": " ".join(SHORT), "identical": histories[0] == histories[1], "histories": histories}


def syncs_per_step() -> dict:
    from config import TrainConfig
    from training import apply_precision, build, make_ema, make_optimizer, training_criterion
    from util import train

    cfg = TrainConfig(**SYNC_CHECK)
    device = torch.device("cuda")
    model, train_loader, _ = build(cfg, device)
    optimizer, scheduler = make_optimizer(model, cfg, len(train_loader))
    ema, criterion = make_ema(model, cfg.ema_decay), training_criterion(cfg)
    apply_precision(cfg.precision, device)
    train(model, device, train_loader, optimizer, criterion, scheduler=scheduler, ema=ema, progress=False)  # warm-up
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train(model, device, train_loader, optimizer, criterion, scheduler=scheduler, ema=ema, progress=False)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    waits = [str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message).lower()]
    return {"steps": len(train_loader), "synchronisations": len(waits),
            "per_step": round(len(waits) / len(train_loader), 2), "kinds": sorted(set(waits))[:10]}


def full_recipe(tmp: Path) -> dict:
    run = train_py([], tmp / "default")
    h = run["history"]
    elapsed = [sum(h["seconds"][: i + 1]) for i in range(len(h["seconds"]))]
    first = next((i for i, acc in enumerate(h["test_acc"]) if acc >= TARGET), None)
    return {"epochs": len(h["epoch"]), "final_test_acc": h["test_acc"][-1], "test_acc": h["test_acc"],
            "seconds_to_first_epoch_at_99_4": None if first is None else round(elapsed[first], 1),
            "training_seconds": round(elapsed[-1], 1), "startup_seconds": run["startup_seconds"],
            "process_seconds": round(run["process_seconds"], 1)}


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA GPU here: nothing to check (run `make gpu-check` on a machine with one)")
        return 0
    result = {"machine": machine(), "command": "make gpu-check"}
    print(json.dumps(result["machine"]), flush=True)
    result["cuda_tests"] = cuda_tests()
    print(f"cuda tests: {result['cuda_tests']['summary']}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        result["two_runs_same_seed"] = two_runs(Path(tmp))
        print(f"two runs, one seed: identical = {result['two_runs_same_seed']['identical']}", flush=True)
        result["syncs"] = syncs_per_step()
        print(f"host synchronisations per training step: {result['syncs']['per_step']}", flush=True)
        result["default_recipe"] = full_recipe(Path(tmp))
    print(f"default recipe: {json.dumps({k: v for k, v in result['default_recipe'].items() if k != 'test_acc'})}")
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0 if result["cuda_tests"]["passed"] and result["two_runs_same_seed"]["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
