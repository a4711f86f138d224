"""The speed benchmark: training throughput of each pipeline and model, against the measured matmul peak.

Stages run in their own processes one after another, so no thread pool, worker or cache of one stage helps
or hurts the next; each throughput is the median of several timed chunks.

    python bench.py        # a few minutes -> results/bench.json (accuracy sweeps: experiments.py)
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

RESULTS = Path(__file__).resolve().parent / "results"
STEPS, CHUNKS, WARMUP = 20, 5, 5  # timed steps per chunk, chunks (median taken), untimed warm-up steps
MATMUL_N = 1024  # square fp32 matmul size for the peak estimate


class ExamplesNet(nn.Module):
    """pytorch/examples mnist/main.py's network (~1.2M parameters): the usual starting point."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, 1), nn.Conv2d(32, 64, 3, 1)
        self.dropout1, self.dropout2 = nn.Dropout(0.25), nn.Dropout(0.5)
        self.fc1, self.fc2 = nn.Linear(9216, 128), nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.relu(self.fc1(torch.flatten(self.dropout1(x), 1)))
        return F.log_softmax(self.fc2(self.dropout2(x)), dim=1)


def stage_throughput(stage: str, data_dir: str | None, batch_size: int) -> dict:
    """Training images/s of one stage over CHUNKS x STEPS steps after WARMUP steps."""
    from datasets import load_data
    from model import Net, count_parameters, training_flops_per_image
    from util import set_seed

    set_seed(0)
    pipeline = "torchvision" if stage == "original" else "fast"
    # The original project's DataLoader used 2 worker processes; the fast path needs none.
    train_loader, _ = load_data(batch_size, data_dir, pipeline=pipeline, num_workers=2 if stage == "original" else 0)
    if stage == "examples":
        model = ExamplesNet()
        optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    else:
        model = Net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    flops = training_flops_per_image(model)
    model.train()
    batches = iter(train_loader)
    times = []
    for chunk in range(-1, CHUNKS):
        start = time.perf_counter()
        for _ in range(WARMUP if chunk < 0 else STEPS):
            data, target = next(batches)
            optimizer.zero_grad(set_to_none=True)
            F.nll_loss(model(data), target).backward()
            optimizer.step()
        if chunk >= 0:
            times.append(time.perf_counter() - start)
    rates = [STEPS * batch_size / t for t in times]
    return {
        "stage": stage,
        "model": type(model).__name__,
        "parameters": count_parameters(model),
        "pipeline": pipeline,
        "images_per_s": round(statistics.median(rates), 1),
        "images_per_s_chunks": [round(r, 1) for r in rates],
        "train_flops_per_image": flops,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def stage_matmul() -> dict:
    """fp32 matmul GFLOP/s with torch's default threads: the practical peak the model is measured against."""
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
    for _ in range(3):
        a @ b
    rates = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        rates.append(5 * 2 * MATMUL_N**3 / (time.perf_counter() - start) / 1e9)
    return {"stage": "matmul", "gflops": round(statistics.median(rates), 1), "threads": torch.get_num_threads()}


def run_stage(args: list[str]) -> dict:
    """Run `bench.py --stage ...` in a fresh process and return its JSON line."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    """Run the measurements, print them, write results/bench.json; return the result dict."""
    from config import TrainConfig
    from util import cpu_name

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="MNIST root (default: $MNIST_DATA_DIR, else ./data)")
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--stage", choices=("original", "fast", "examples", "matmul"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.stage:  # child process: one measurement, one JSON line
        result = stage_matmul() if a.stage == "matmul" else stage_throughput(a.stage, a.data_dir, a.batch_size)
        print(json.dumps(result))
        return result

    common = ["--batch-size", str(a.batch_size)] + (["--data-dir", a.data_dir] if a.data_dir else [])
    stages = {name: run_stage(["--stage", name, *common]) for name in ("original", "fast", "examples", "matmul")}
    peak = stages["matmul"]["gflops"]
    print(f"\n{'stage':10s} {'model':13s} {'params':>9s} {'pipeline':12s} {'img/s':>8s} {'MFLOP/img':>10s} "
          f"{'GFLOP/s':>8s} {'% peak':>7s} {'RSS MB':>7s}")
    for s in (stages["original"], stages["fast"], stages["examples"]):
        s["gflops"] = round(s["images_per_s"] * s["train_flops_per_image"] / 1e9, 2)
        s["share_of_matmul_peak"] = round(s["gflops"] / peak, 3)
        print(f"{s['stage']:10s} {s['model']:13s} {s['parameters']:9,d} {s['pipeline']:12s} {s['images_per_s']:8.0f} "
              f"{s['train_flops_per_image'] / 1e6:10.2f} {s['gflops']:8.2f} {100 * s['share_of_matmul_peak']:6.1f}% "
              f"{s['peak_rss_mb']:7.0f}")
    speedup = stages["fast"]["images_per_s"] / stages["original"]["images_per_s"]
    print(f"matmul peak: {peak} GFLOP/s fp32 on {stages['matmul']['threads']} threads")
    print(f"fast path vs original pipeline, same model and batch: {speedup:.1f}x")
    speed = {
        "machine": {"platform": platform.platform(), "processor": cpu_name(),
                    "cpus": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()},
        "batch_size": a.batch_size, "steps_per_chunk": STEPS, "chunks": CHUNKS,
        "stages": stages, "fast_vs_original": round(speedup, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench.json").write_text(json.dumps(speed, indent=1) + "\n")  # the training runs have their own files
    return speed


if __name__ == "__main__":
    main()
