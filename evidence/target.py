"""Time to 99.4% test accuracy from a fresh process: the course's loop against the quick and the default recipe,
and where an epoch of the quick recipe spends its time. Run through `python -m evidence.bench --only target`.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
TARGET = 99.4  # % test accuracy: the course's goal
COURSE_EPOCHS = 20  # the course's budget ("under 20 epochs"): its loop stops there if it never reaches TARGET
EPOCH_LINE = re.compile(r"^epoch\s+\d+ .*\bacc\s+([\d.]+)%[^%]*$")  # the last "acc X%" of a line is the test's


def stage_course(data_dir: str | None, batch_size: int) -> None:
    """The course's loop as a student writes it, to TARGET: the seed's PIL transforms on each image, a DataLoader with
    2 worker processes, SGD (lr 0.01, momentum 0.9) with StepLR(15, 0.1), util.train and util.test; one line an
    epoch."""
    from torch.utils.data import DataLoader

    from datasets import mnist_split, test_transforms, train_transforms
    from model import Net
    from util import set_seed, test, train

    set_seed(0)
    kwargs = dict(batch_size=batch_size, num_workers=2, pin_memory=True)  # as the course's notebook
    train_loader = DataLoader(mnist_split(True, data_dir, transform=train_transforms()), shuffle=True, **kwargs)
    test_loader = DataLoader(mnist_split(False, data_dir, transform=test_transforms()), shuffle=False, **kwargs)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=15, gamma=0.1)
    for epoch in range(1, COURSE_EPOCHS + 1):
        train(model, "cpu", train_loader, optimizer)
        scheduler.step()
        acc = test(model, "cpu", test_loader).acc
        print(f"epoch {epoch:2d} | test acc {acc:.2f}%", flush=True)
        if acc >= TARGET:
            break


def time_to_target(cmd: list[str]) -> dict:
    """Run `cmd` (a training that prints one line an epoch) as a fresh process -> each epoch's test accuracy and the
    seconds from the process's start to its line; the first epoch at TARGET, and the last."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    accs, seconds = [], []
    for line in proc.stdout:
        if match := EPOCH_LINE.match(line):
            accs.append(float(match.group(1)))
            seconds.append(round(time.perf_counter() - start, 1))
    if proc.wait():
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    first = next((i for i, acc in enumerate(accs) if acc >= TARGET), None)
    return {"command": " ".join(cmd[1:]), "test_acc": accs, "seconds": seconds, "epochs_run": len(accs),
            "first_epoch_at_target": None if first is None else first + 1,
            "seconds_to_target": None if first is None else seconds[first], "seconds_to_end": seconds[-1]}


def measure_target(common: list[str], data_dir: str | None, rounds: int = 2) -> dict:
    """The course's loop, the quick recipe and the default recipe to TARGET, alternated over `rounds`, each from a
    fresh process with the threads a user gets; the quick recipe's end against the course's first epoch at TARGET."""
    data = ["--data-dir", data_dir] if data_dir else []
    with tempfile.TemporaryDirectory() as tmp:
        train = [sys.executable, "train.py", "--force", *data]
        commands = {"course": [sys.executable, "-m", "evidence.bench", "--stage", "course", *common],
                    "quick": [*train, "--preset", "quick", "--out", f"{tmp}/quick"],
                    "default": [*train, "--out", f"{tmp}/default"]}
        runs = {name: [] for name in commands}
        for _ in range(rounds):
            for name, cmd in commands.items():
                runs[name].append(time_to_target(cmd))
                print(name, json.dumps(runs[name][-1]), flush=True)
    course = statistics.median(r["seconds_to_target"] or float("inf") for r in runs["course"])
    quick = statistics.median(r["seconds_to_end"] for r in runs["quick"])
    from threads import cpu_name
    from training import resolve_precision

    machine = {"processor": cpu_name(), "cpus": os.cpu_count(), "torch": torch.__version__,
               "precision_auto": resolve_precision("auto", "cpu")}
    return {"target": TARGET, "machine": machine, "rounds": rounds, "runs": runs, "course_seconds_to_target": course,
            "quick_seconds_to_end": quick, "course_over_quick": round(course / quick, 2)}




PROFILE_WARMUP, PROFILE_STEPS = 10, 100  # untimed, then timed training steps of the profile


def stage_profile(data_dir: str | None) -> dict:
    """Milliseconds per training step of the quick recipe, part by part, with the threads a user gets, and one test
    pass: what its epoch is made of."""
    from config import PRESETS, TrainConfig
    from training import apply_precision, build, make_ema, make_optimizer, resolve_precision, training_criterion
    from util import test

    cfg = TrainConfig(**PRESETS["quick"], data_dir=data_dir)
    device = torch.device("cpu")
    model, train_loader, test_loader = build(cfg, device)
    optimizer, scheduler = make_optimizer(model, cfg, len(train_loader))
    ema, criterion = make_ema(model, cfg.ema_decay), training_criterion(cfg)
    autocast = apply_precision(cfg.precision, device)
    parts = dict.fromkeys(("batch and its augmentation", "forward and loss", "backward", "optimizer and schedule",
                           "weight average"), 0.0)
    batches, model = iter(train_loader), model.train()
    for i in range(PROFILE_WARMUP + PROFILE_STEPS):
        times = [time.perf_counter()]
        data, target = next(batches)
        times.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
            loss = criterion(model(data), target)
        times.append(time.perf_counter())
        loss.backward()
        times.append(time.perf_counter())
        optimizer.step()
        scheduler.step()
        times.append(time.perf_counter())
        ema.update_parameters(model)
        times.append(time.perf_counter())
        if i >= PROFILE_WARMUP:
            for part, start, end in zip(parts, times, times[1:]):
                parts[part] += (end - start) * 1e3 / PROFILE_STEPS
    start = time.perf_counter()
    test(ema.module, device, test_loader)
    tested = time.perf_counter() - start
    return {"stage": "profile", "threads": torch.get_num_threads(),
            "precision": resolve_precision(cfg.precision, device), "steps_per_epoch": len(train_loader),
            "ms_per_step": {k: round(v, 3) for k, v in parts.items()}, "test_pass_s": round(tested, 2)}
