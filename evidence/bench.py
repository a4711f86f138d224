"""The speed benchmark: throughput against the matmul peak, threads on a busy machine, start-up, the app under load,
and the time from a fresh process to 99.4% test accuracy: the course's loop, the quick recipe, the default recipe.

Every measurement runs in its own process, one after another (never two at once), so no thread pool, worker
or cache of one stage helps or hurts the next. Every part alternates its variants over two rounds;
a throughput stage keeps the faster round, each round the median of timed chunks.

    python -m evidence.bench                       # ~10 minutes -> results/bench.json; tables: experiments.py report
    python -m evidence.bench --only threads app    # some parts only (throughput, threads, startup, app, target)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from evidence.target import measure_target, stage_course, stage_profile

ROOT = Path(__file__).resolve().parent.parent  # the repository root: train.py, results/, docs/
RESULTS = ROOT / "results"
STEPS, CHUNKS, WARMUP = 20, 5, 5  # timed steps per chunk, chunks (median taken), untimed warm-up steps
MATMUL_N = 1024  # square fp32 matmul size for the peak estimate
# The kernels that do the FLOPs FlopCounterMode counts (convolutions and matrix products), by profiler name.
FLOP_OPS = {"aten::mkldnn_convolution", "aten::convolution_backward", "aten::addmm", "aten::mm", "aten::bmm"}


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
    train_loader, _ = load_data(batch_size, data_dir, pipeline=pipeline, num_workers=2 if stage == "original" else 0,
                                stroke_prob=0.1 if stage == "fast-redraw" else 0.0)
    precision = torch.bfloat16 if stage == "fast-bf16" else None
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

    def step(data, target):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=precision, enabled=precision is not None):
            loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()

    for chunk in range(-1, CHUNKS):
        start = time.perf_counter()
        for _ in range(WARMUP if chunk < 0 else STEPS):
            step(*next(batches))
        if chunk >= 0:
            times.append(time.perf_counter() - start)
    rates = [STEPS * batch_size / t for t in times]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(STEPS):
            step(*next(batches))
    events = prof.key_averages()
    flop_us = sum(e.self_cpu_time_total for e in events if e.key in FLOP_OPS)
    return {
        "stage": stage,
        "model": type(model).__name__,
        "parameters": count_parameters(model),
        "pipeline": pipeline + (" + 10% redrawn" if stage == "fast-redraw" else ""),
        "precision": "bfloat16 autocast" if precision else "float32",
        "threads": torch.get_num_threads(),
        "images_per_s": round(statistics.median(rates), 1),
        "images_per_s_chunks": [round(r, 1) for r in rates],
        "train_flops_per_image": flops,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # A profiled extra chunk: what share of a step the counted FLOPs' own kernels take, and their rate.
        "flop_ops_share_of_step": round(flop_us / sum(e.self_cpu_time_total for e in events), 3),
        "flop_ops_gflops": round(STEPS * batch_size * flops / flop_us / 1e3, 2),
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


POLICY_BATCHES = 200  # training batches timed per thread-policy measurement (one train() call)


def stage_policy(mode: str, data_dir: str | None, batch_size: int) -> dict:
    """Training images/s through util.train with `mode` threads: "1", "2", or "auto" (the default policy)."""
    from datasets import load_data
    from model import Net
    from threads import FollowFreeCores
    from util import set_seed, train

    set_seed(0)
    threads = None if mode == "auto" else int(mode)
    loader, _ = load_data(batch_size, data_dir, subset=POLICY_BATCHES * batch_size)
    warm, _ = load_data(batch_size, data_dir, subset=10 * batch_size)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    train(model, "cpu", FollowFreeCores(warm, threads), optimizer, progress=False)
    start = time.perf_counter()
    train(model, "cpu", FollowFreeCores(loader, threads), optimizer, progress=False)
    seconds = time.perf_counter() - start
    return {"stage": f"threads-{mode}", "images_per_s": round(len(loader.dataset) / seconds, 1),
            "threads_at_end": torch.get_num_threads()}


@contextlib.contextmanager
def competing_load(processes: int):
    """`processes` CPU-bound processes (a browser, a notebook server...) running meanwhile."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    time.sleep(0.5)
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def measure_threads(common: list[str], rounds: int = 2) -> dict:
    """Thread policy vs fixed counts, idle and with one competing process per core but one; alternated."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # the default, as a user starts it
    modes = ["1", str(cores), "auto"] if cores > 1 else ["1", "auto"]
    rates: dict = {s: {m: [] for m in modes} for s in ("idle", "loaded")}
    for _ in range(rounds):
        for situation in rates:
            with competing_load(cores - 1 if situation == "loaded" else 0):
                for mode in modes:
                    result = run_stage(["--stage", f"threads-{mode}", *common], env)
                    rates[situation][mode].append(result["images_per_s"])
    table = {s: {m: round(statistics.median(v), 1) for m, v in by_mode.items()} for s, by_mode in rates.items()}
    for by_mode in table.values():
        best = max(v for m, v in by_mode.items() if m != "auto")
        by_mode["auto_share_of_best_fixed"] = round(by_mode["auto"] / best, 3)
    return {"cores": cores, "competing_processes_when_loaded": cores - 1, "rounds": rounds,
            "images_per_s": table, "each_round": rates}


def measure_startup(data_dir: str | None) -> dict:
    """Seconds from `python train.py` to its first training step, with the centre lines cached and not."""
    def startup(cache: str | None) -> float:
        env = {**os.environ, **({"S6_CACHE_DIR": cache} if cache else {})}
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "train.py", "--epochs", "1", "--out", out]
            cmd += ["--data-dir", data_dir] if data_dir else []
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
            return json.loads(Path(out, "history.json").read_text())["startup_seconds"]

    with tempfile.TemporaryDirectory() as empty:
        cold = startup(empty)
    warm = [startup(None) for _ in range(3)]
    return {"cold_cache_seconds": cold, "warm_cache_seconds": statistics.median(warm), "warm_runs": warm}


APP_CLIENTS, APP_DIGITS = 20, 5  # concurrent API clients, digits each


class HttpClient:
    """Gradio's documented HTTP API, as `curl` uses it: upload the file, queue the call, read the result."""

    def __init__(self, url: str) -> None:
        self.url = url + "gradio_api/"

    def predict(self, path: Path, api_name: str = "/classify") -> dict:
        boundary = os.urandom(8).hex()
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes()
        body += f"\r\n--{boundary}--\r\n".encode()
        upload = urllib.request.Request(self.url + "upload", body,
                                        {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        [server_path] = json.loads(urllib.request.urlopen(upload, timeout=60).read())
        data = json.dumps({"data": [{"path": server_path, "meta": {"_type": "gradio.FileData"}}]}).encode()
        call = urllib.request.Request(self.url + "call" + api_name, data, {"Content-Type": "application/json"})
        event = json.loads(urllib.request.urlopen(call, timeout=60).read())["event_id"]
        stream = urllib.request.urlopen(f"{self.url}call{api_name}/{event}", timeout=60).read().decode()
        kind, payload = stream.strip().split("\n")[-2:]
        if kind != "event: complete":
            raise RuntimeError(f"{kind}: {payload}")
        return json.loads(payload.removeprefix("data: "))[0]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def app_under_load(concurrency: int, digits: list[tuple[Path, int]], client_kind: str) -> dict:
    """Start app.py, then APP_CLIENTS clients send APP_DIGITS digits each at once; page loads meanwhile.

    `client_kind`: "http" (Gradio's HTTP API, light) or "gradio_client" (heavier: on a 2-core machine its 20
    clients take much of the CPU the server needs).
    """
    from gradio_client import Client, handle_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--concurrency", str(concurrency)],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url, timeout=2)
                break
            time.sleep(0.5)
        make = (lambda: HttpClient(url)) if client_kind == "http" else (lambda: Client(url, verbose=False))
        clients = [make() for _ in range(APP_CLIENTS)]
        send = (lambda c, p: c.predict(p)) if client_kind == "http" else (
            lambda c, p: c.predict(handle_file(p), api_name="/classify"))
        latencies, wrong, errors, page = [], 0, [], []
        go, done = threading.Barrier(APP_CLIENTS + 1), threading.Event()

        def client(c, k):
            nonlocal wrong
            go.wait()
            for path, label in digits[k * APP_DIGITS:(k + 1) * APP_DIGITS]:
                start = time.perf_counter()
                try:
                    answer = send(c, path)
                    latencies.append(time.perf_counter() - start)
                    wrong += answer["verdict"] != str(label)
                except Exception as exc:  # counted and shown: the stage asks for none
                    errors.append(repr(exc)[:200])

        def page_loads():
            while not done.is_set():
                start = time.perf_counter()
                urllib.request.urlopen(url, timeout=30).read()
                page.append(time.perf_counter() - start)
                time.sleep(0.25)

        threads = [threading.Thread(target=client, args=(c, k)) for k, c in enumerate(clients)]
        for t in threads:
            t.start()
        watcher = threading.Thread(target=page_loads)
        go.wait()
        start, app_cpu, own_cpu = time.perf_counter(), _cpu_seconds(app.pid), sum(os.times()[:2])
        watcher.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        app_cpu, own_cpu = _cpu_seconds(app.pid) - app_cpu, sum(os.times()[:2]) - own_cpu
        done.set()
        watcher.join()
    finally:
        app.terminate()
        app.wait(timeout=30)
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return {"client": client_kind, "concurrency": concurrency, "requests": APP_CLIENTS * APP_DIGITS,
            "app_cpu_s": round(app_cpu, 2), "clients_cpu_s": round(own_cpu, 2), "answered": len(latencies),
            "errors": errors, "wrong": wrong, "p50_s": round(statistics.median(latencies), 3),
            "p95_s": round(q[18], 3), "requests_per_s": round(len(latencies) / wall, 1),
            "page_load_max_s": round(max(page), 3) if page else None}


def measure_app(data_dir: str | None, concurrencies=(1, 4), rounds: int = 2) -> dict:
    """The app's API under APP_CLIENTS concurrent clients, per client kind and concurrency, alternated."""
    from PIL import Image

    from datasets import mnist_split

    test = mnist_split(False, data_dir, subset=APP_CLIENTS * APP_DIGITS)
    with tempfile.TemporaryDirectory() as tmp:
        digits = []
        for i, (digit, label) in enumerate(zip(test.data.numpy(), test.targets.tolist())):
            path = Path(tmp) / f"{i}.png"
            Image.fromarray(255 - digit).resize((112, 112), Image.Resampling.BICUBIC).save(path)  # ink on paper
            digits.append((path, label))
        runs = []
        for _ in range(rounds):
            for kind in ("http", "gradio_client"):
                for c in concurrencies:
                    runs.append(app_under_load(c, digits, kind))
    return {"clients": APP_CLIENTS, "digits_each": APP_DIGITS, "rounds": rounds, "runs": runs}


def run_stage(args: list[str], env: dict | None = None) -> dict:
    """Run `python -m evidence.bench --stage ...` in a fresh process and return its JSON line."""
    out = subprocess.run([sys.executable, "-m", "evidence.bench", *args], cwd=ROOT, check=True, capture_output=True,
                         text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


THROUGHPUT_STAGES = ("original", "fast", "fast-redraw", "fast-bf16", "examples", "matmul")
PARTS = ("throughput", "threads", "startup", "app", "target")


def main(argv: list[str] | None = None) -> dict:
    """Run the measurements, print them, write results/bench.json; return the result dict."""
    from config import TrainConfig
    from threads import cpu_name

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="MNIST root (default: $MNIST_DATA_DIR, else ./data)")
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, help="parts to measure (default: all)")
    p.add_argument("--stage", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.stage:  # child process: one measurement, one JSON line
        if a.stage == "matmul":
            result = stage_matmul()
        elif a.stage == "course":
            return stage_course(a.data_dir, a.batch_size)
        elif a.stage == "profile":
            result = stage_profile(a.data_dir)
        elif a.stage.startswith("threads-"):
            result = stage_policy(a.stage.split("-", 1)[1], a.data_dir, a.batch_size)
        else:
            result = stage_throughput(a.stage, a.data_dir, a.batch_size)
        print(json.dumps(result))
        return result

    path = RESULTS / "bench.json"
    speed = json.loads(path.read_text()) if path.exists() else {}
    speed["machine"] = {"platform": platform.platform(), "processor": cpu_name(), "cpus": os.cpu_count(),
                        "torch": torch.__version__, "python": platform.python_version()}
    common = ["--batch-size", str(a.batch_size)] + (["--data-dir", a.data_dir] if a.data_dir else [])
    if "throughput" in a.only:
        rounds = [{name: run_stage(["--stage", name, *common]) for name in THROUGHPUT_STAGES} for _ in range(2)]
        stages = {}
        for name in THROUGHPUT_STAGES:  # best of two alternated rounds: neighbours on the host only slow a stage
            key = "gflops" if name == "matmul" else "images_per_s"
            stages[name] = max((r[name] for r in rounds), key=lambda s: s[key])
            stages[name]["rounds"] = [r[name][key] for r in rounds]
        peak = stages["matmul"]["gflops"]
        for s in stages.values():
            if "images_per_s" in s:
                s["gflops"] = round(s["images_per_s"] * s["train_flops_per_image"] / 1e9, 2)
                s["share_of_matmul_peak"] = round(s["gflops"] / peak, 3)
                s["flop_ops_share_of_matmul_peak"] = round(s["flop_ops_gflops"] / peak, 3)
        speed.update(batch_size=a.batch_size, steps_per_chunk=STEPS, chunks=CHUNKS, stages=stages,
                     fast_vs_original=round(stages["fast"]["images_per_s"] / stages["original"]["images_per_s"], 2))
        print(json.dumps({k: stages[k].get("images_per_s", stages[k].get("gflops")) for k in stages}))
    if "threads" in a.only:
        speed["threads"] = measure_threads(common)
        print(json.dumps(speed["threads"]["images_per_s"]))
    if "startup" in a.only:
        speed["startup"] = measure_startup(a.data_dir)
        print(json.dumps(speed["startup"]))
    if "target" in a.only:
        speed["target"] = measure_target(common, a.data_dir)
        speed["target"]["profile"] = run_stage(["--stage", "profile", *common])
    if "app" in a.only:
        speed["app"] = measure_app(a.data_dir)
        print(json.dumps([(r["client"], r["concurrency"], r["p50_s"], r["p95_s"], r["requests_per_s"], r["answered"],
                           len(r["errors"]), r["app_cpu_s"], r["clients_cpu_s"]) for r in speed["app"]["runs"]]))
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(speed, indent=1) + "\n")
    return speed


if __name__ == "__main__":
    main()
