"""The sweeps behind every accuracy claim, each training run one Ray task, and the docs' tables printed from them.

    python experiments.py sizes                  # 15k, 8k and 4k x seeds 0-4, recipe PREVIOUS -> results/sizes/
    python experiments.py frontier               # the default size at 3..9 epochs x seeds 0-4 -> results/frontier/
    python experiments.py ablation               # the screening table, seeds 0 and 1 -> results/ablation/
    python experiments.py recipe                 # the default recipe x seeds 0-4, with robustness.py's figures
    python experiments.py recipe-no-erase        # the default recipe without random erasing, the same
    python experiments.py recipe-erase-0.1       # ... erasing twice as often (the previous default), the same
    python experiments.py recipe-stroke-0.3      # ... with three times the redrawn strokes, the same
    python experiments.py recipe-printed-0.1     # ... with a tenth of the digits printed, the same
    python experiments.py recipe-low-res-0.2     # ... with a fifth of the images shrunk and enlarged back, the same
    python experiments.py recipe-low-res-0.2-e19 # ... and 19 epochs, the same
    python experiments.py recipe-thicken-0.2     # ... with thickened strokes, the same
    python experiments.py app                    # the app model's recipe (APP) x seeds 0-4, the same
    python experiments.py reject                 # the shipped rejection model (REJECT) x seeds 0-4, the same at
                                                 # its own threshold (reject-60k, reject-15k, ...: earlier ones)
    python experiments.py robust-ablation        # the app model's recipe without (or with) one lever at a time
    python experiments.py faithful               # the seed-faithful recipe x seeds 0-4, the same figures
    python experiments.py examples               # pytorch/examples' network x seeds 0-4, the same figures
    python experiments.py flags NAME "--epochs 5" "--epochs 5 --lr 0.1"   # any train.py flag sets -> results/NAME/
    python experiments.py evaluate NAME          # add robustness.py's figures to NAME's finished runs (and
                                                 # recompute the validation figures of --holdout runs)
    python experiments.py report [--write]       # the docs' tables from results/ (--write puts them into the docs)
    python experiments.py scale                  # the same small sweep on 1 and 2 workers -> results/scale.json

Local by default: a Ray instance on this machine runs one training run per core, one thread each. With
`--address auto` (a running `ray start --head`) or `--address ray://HOST:10001` (or $RAY_ADDRESS) the same tasks
go to a cluster: the project's code travels as Ray's working directory (without data, runs, results, caches or
the venv), each worker finds MNIST the usual way ($MNIST_DATA_DIR, ./data, or a download), and results and
checkpoints come back to this machine. Resumable: a run whose result file exists and holds the same config is
skipped (`--rerun` runs it again), so Ctrl-C, a crashed worker or a lost node costs only the runs in flight.
A run that fails is reported with its flags and error while the others go on; the sweep then exits 1.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before ray is imported: no usage reports home

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CHECKPOINTS = ROOT / "runs" / "sweeps"  # each finished run's checkpoint.pt, to evaluate it later (git-ignored)
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))  # files that may hold generated tables
SEEDS = (0, 1, 2, 3, 4)  # every accuracy claim is over these five seeds
ANSWER_SIZES = ("15k", "8k", "4k")  # model.SIZES for reading digits (the sizes sweep); the wider ones only refuse
ABLATION_SEEDS = (0, 1)  # screening proxy: two seeds; a winner is confirmed on SEEDS
FRONTIER_EPOCHS = (3, 4, 5, 6, 7, 8, 9)
WORKING_DIR_EXCLUDES = [".git", ".venv", "data", "runs", "results", "checkpoints", "docs", "tests", "__pycache__",
                        ".pytest_cache", ".ruff_cache", "*.onnx", "*.ipynb", "*.png"]


NO_ROBUSTNESS_LEVERS = ["--shift", "0", "--elastic", "0", "--noise", "0", "--erase", "0", "--not-digits", "0",
                        "--input-norm", "none"]
# The default recipe before the robustness levers: the sizes and frontier tables measure it.
PREVIOUS = ["--epochs", "15", "--stroke-prob", "0.1", *NO_ROBUSTNESS_LEVERS]
# The seed-faithful recipe: PREVIOUS without the redrawn strokes, i.e. the seed project's data on this model.
FAITHFUL = ["--epochs", "15", "--stroke-prob", "0", *NO_ROBUSTNESS_LEVERS]


def recipe(epochs: int, ema: float, wd: float, redraw: float, *more: str) -> list[str]:
    """train.py flags with every lever of the recipe explicit, so a row means the same when defaults move."""
    return ["--epochs", str(epochs), "--ema-decay", str(ema), "--weight-decay", str(wd), "--stroke-prob", str(redraw),
            *NO_ROBUSTNESS_LEVERS, *more]


ABLATION = {  # name -> train.py flags; "base" is the seed project's recipe on this model
    "base": recipe(9, 0, 0, 0),
    "ema": recipe(9, 0.999, 0, 0),
    "ema+ls0.1": recipe(9, 0.999, 0, 0, "--label-smoothing", "0.1"),
    "ema+lr0.1": recipe(9, 0.999, 0, 0, "--lr", "0.1"),
    "ema+lr0.025": recipe(9, 0.999, 0, 0, "--lr", "0.025"),
    "e15": recipe(15, 0, 0, 0),
    "e15+ema": recipe(15, 0.999, 0, 0),
    "e15+ema+wd5e-4": recipe(15, 0.999, 5e-4, 0),
    "e15+ema+lr0.1": recipe(15, 0.999, 0, 0, "--lr", "0.1"),
    "e15+ema+ls0.1": recipe(15, 0.999, 0, 0, "--label-smoothing", "0.1"),
    "e15+ema+bs64": recipe(15, 0.999, 0, 0, "--batch-size", "64"),
    "e15+ema+wd+redraw0.1": recipe(15, 0.999, 5e-4, 0.1),  # the default recipe
    "e15+ema+wd+redraw0.25": recipe(15, 0.999, 5e-4, 0.25),
    "e15+ema+wd+redraw0.5": recipe(15, 0.999, 5e-4, 0.5),
    "8k": recipe(15, 0.999, 5e-4, 0, "--model", "8k"),
    "8k+wd0": recipe(15, 0.999, 0, 0, "--model", "8k"),
}


# sweeps (by prefix) whose runs get robustness figures
EVALUATED = ("recipe", "app", "faithful", "screen", "robust", "reject")


def verdict_below(flags: list[str]) -> float:
    """The top probability under which a run's own verdict is "not a digit": runs of the 60k rejection recipe (the
    shipped one adds flags to it) at predict.REJECT_BELOW, every other run at the answering model's own."""
    from predict import OWN_REJECT_BELOW, REJECT_BELOW

    return REJECT_BELOW if flags[: len(REJECT_60K)] == REJECT_60K else OWN_REJECT_BELOW


def run_flags(run: dict) -> list[str]:
    """The train.py flags a result file's run was trained with (from its recorded command)."""
    return shlex.split(run["command"].split("train.py ", 1)[1])


# The app model (shipped before the rejection model): the default recipe plus generated non-digits, one network
# answering and saying "not a digit / not sure", which costs its answers clean accuracy and MNIST-C.
APP = ["--not-digits", "0.125"]
# The shipped rejection model (checkpoints/s6-reject.pt): the default recipe trained with many generated non-digits,
# hand-written and printed letters among them; its top probability says "not a digit" while the default model
# answers. Its own clean accuracy does not matter, so it can spend more of itself on non-digits than APP can;
# low-resolution digits among its training images keep soft ink from reading as "not a digit"; printed digits
# among its digits keep a 1 with a flag and a base, or a narrow 0, from reading as a letter; and since its answers
# are never shown it need not keep to the course's 15k parameters: a wider network is surer of digits, so the same
# threshold rule lets it refuse more non-digits (predict.REJECT_BELOW). Smooth curves among its scribbles teach it
# the loops people scribble, and 18 epochs instead of 12 make it surer of digits, which pays for them.
REJECT_PREVIOUS = ["--epochs", "12", "--not-digits", "0.25", "--not-digit-letters", "0.25", "--not-digit-printed",
                   "0.25", "--low-res", "0.2"]  # shipped before the printed digits; its ablation is run on it
REJECT_15K = [*REJECT_PREVIOUS, "--digit-printed", "0.25"]  # shipped before the wider model
REJECT_60K = [*REJECT_15K, "--model", "60k"]  # shipped before the smooth scribbles and the longer training
REJECT = [*REJECT_60K, "--not-digit-curves", "0.5", "--epochs", "18"]
# The app model's levers, explicit, so the ablation's rows keep their meaning when a default moves.
ROBUST_BASE = ["--epochs", "18", "--stroke-prob", "0.1", "--input-norm", "minmax", "--shift", "1", "--elastic", "1",
               "--noise", "0.15", "--erase", "0.1", "--not-digits", "0.125"]
ROBUST_ABLATION = {  # name -> train.py flags after ROBUST_BASE, with 5,000 training digits held out
    "default": [],
    "-minmax": ["--input-norm", "none"],
    "-shift-elastic": ["--shift", "0", "--elastic", "0"],
    "-noise": ["--noise", "0"],
    "-erase": ["--erase", "0"],
    "-not-digits": ["--not-digits", "0"],
    "-erase-not-digits": ["--erase", "0", "--not-digits", "0"],
    "+letters": ["--not-digit-letters", "0.25"],
    "-not-digits+dark-erase": ["--not-digits", "0", "--erase-dark", "1"],  # black fills only: no ink added
    "-not-digits-half-erase": ["--not-digits", "0", "--erase", "0.05"],
    "-all": ["--input-norm", "none", "--shift", "0", "--elastic", "0", "--noise", "0", "--erase", "0",
             "--not-digits", "0"],  # the previous recipe, at 18 epochs
}


# Five-seed sweeps of one recipe each: name -> train.py flags (results/<name>/seed<N>.json).
SEED_SWEEPS = {
    "recipe": [],
    "recipe-no-erase": ["--erase", "0"],
    "recipe-erase-0.1": ["--erase", "0.1"],  # the previous default
    "recipe-stroke-0.3": ["--stroke-prob", "0.3"],  # more redrawn strokes: the thick marker's candidate
    "recipe-printed-0.1": ["--digit-printed", "0.1"],  # printed digits: shapes MNIST's writers rarely made
    "recipe-low-res-0.2": ["--low-res", "0.2"],  # low-resolution scans: a 9's small loop closes up
    "recipe-low-res-0.2-e19": ["--low-res", "0.2", "--epochs", "19"],  # ... with the course's last epoch
    "recipe-thicken-0.2": ["--thicken", "0.2"],  # thickened strokes: the thick marker without the pen model
    "app": APP,
    "reject": REJECT,
    "reject-60k": REJECT_60K,
    "reject-curves": [*REJECT_60K, "--not-digit-curves", "0.5"],  # 12 epochs: refuses >1% of test digits
    "reject-15k": REJECT_15K,
    "reject-previous": REJECT_PREVIOUS,
    "reject-no-low-res": [*REJECT_PREVIOUS, "--low-res", "0"],
    "faithful": FAITHFUL,
}


def sweep_runs(sweep: str, seeds: tuple[int, ...] | None = None, flag_sets: list[str] = ()) -> dict[str, list[str]]:
    """The runs of a named sweep: result name -> train.py flags."""
    if sweep == "sizes":
        return {f"{size}-seed{s}": [*PREVIOUS, "--model", size, "--seed", str(s)]
                for size in ANSWER_SIZES for s in seeds or SEEDS}
    if sweep == "frontier":
        return {f"15k-e{e}-seed{s}": [*PREVIOUS, "--epochs", str(e), "--seed", str(s)]
                for e in FRONTIER_EPOCHS for s in seeds or SEEDS}
    if sweep in SEED_SWEEPS:
        return {f"seed{s}": [*SEED_SWEEPS[sweep], "--seed", str(s)] for s in seeds or SEEDS}
    if sweep == "robust-ablation":
        return {f"{name}-seed{s}": [*ROBUST_BASE, *flags, "--holdout", "5000", "--seed", str(s)]
                for name, flags in ROBUST_ABLATION.items() for s in seeds or ABLATION_SEEDS}
    if sweep == "ablation":
        return {f"{name}-seed{s}": [*flags, "--seed", str(s)] for name, flags in ABLATION.items()
                for s in seeds or ABLATION_SEEDS}
    runs = {}
    for text in flag_sets:
        flags = shlex.split(text)
        for s in seeds or (None,):
            run_flags = flags if s is None else [*flags, "--seed", str(s)]
            name = re.sub(r"[^A-Za-z0-9.+=-]+", "_", " ".join(f.lstrip("-") for f in run_flags)).strip("_")
            runs[name or "default"] = run_flags
    return runs


BEFORE_FIELD = {  # what runs recorded before a field existed did
    "stroke_prob": 0.0, "precision": "float32", "shift": 0.0, "elastic": 0.0, "noise": 0.0, "erase": 0.0,
    "erase_dark": 0.0, "not_digits": 0.0, "not_digit_letters": 0.0, "not_digit_printed": 0.0, "low_res": 0.0,
    "not_digit_curves": 0.0, "not_digit_hershey": 0.0, "digit_printed": 0.0, "thicken": 0.0, "consistency": 0.0,
    "not_digit_weight": 0.5,
    "input_norm": "none", "holdout": 0,
}
MACHINE_FIELDS = ("data_dir", "threads")  # where and how fast a run goes, not what it computes (one thread here)


def comparable_config(flags: list[str]) -> dict:
    """The TrainConfig train.py would run for `flags`, without the machine-specific fields."""
    import train

    cfg, _ = train.parse_args(flags)
    return {k: v for k, v in cfg.to_dict().items() if k not in MACHINE_FIELDS}


def already_done(path: Path, flags: list[str]) -> bool:
    """Whether `path` holds a finished run made with the config `flags` give today."""
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    stored = {k: v for k, v in {**BEFORE_FIELD, **run.get("config", {})}.items() if k not in MACHINE_FIELDS}
    return stored == comparable_config(flags) and len(run.get("history", {}).get("test_acc", [])) == stored["epochs"]


class RunFailed(RuntimeError):
    """train.py exited with an error; the message holds its flags, exit code and last lines."""


def train_run(flags: list[str], data_dir: str | None = None, evaluate: bool = False) -> tuple[dict, bytes]:
    """One training run in a fresh `python train.py` process, one thread -> (its result dict, checkpoint bytes).
    With `evaluate`, the result also holds robustness.py's figures for the final weights (verdicts at
    verdict_below(flags)).

    Runs on a Ray worker, in the working directory Ray unpacked the project's code into; the output folder is
    temporary: what matters travels back.
    """
    import torch

    from model import Net, training_flops_per_image
    from util import cpu_name

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "train.py", *flags, "--out", out] + (["--data-dir", data_dir] if data_dir else [])
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            last = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise RunFailed(f"train.py {' '.join(flags)} exited with {proc.returncode}: {last}")
        run = json.loads(Path(out, "history.json").read_text())
        checkpoint = Path(out, "checkpoint.pt").read_bytes()
        if evaluate:  # the benchmarks the recipe is never chosen on, measured on the final weights
            import robustness
            from checkpoint import load_checkpoint

            torch.set_num_threads(1)
            model, payload = load_checkpoint(Path(out, "checkpoint.pt"))
            holdout = payload["config"].get("holdout", 0)
            run["robustness"] = robustness.evaluate(model, holdout, data_dir, verdict_below(flags))
    run.update(process_wall_seconds=round(time.perf_counter() - start, 1), cpu=cpu_name(), node=platform.node(),
               train_flops_per_image=training_flops_per_image(Net(run["model"])), threads=1,
               torch=torch.__version__, command=f"OMP_NUM_THREADS=1 python train.py {' '.join(flags)}")
    return run, checkpoint


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def start_ray(address: str | None, workers: int | None):
    """Connect to the cluster at `address`, else start a quiet local instance with `workers` CPUs (default: all)."""
    import ray

    runtime_env = {"working_dir": str(ROOT), "excludes": WORKING_DIR_EXCLUDES}
    common = dict(runtime_env=runtime_env, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    if address:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            print(f"error: cannot reach the Ray cluster at {address} ({type(exc).__name__}: {exc}). Start one with "
                  f"`ray start --head`, use the RAY_AUTH_MODE and token it was started with, or leave out --address "
                  f"for a local instance.", file=sys.stderr)
            raise SystemExit(2) from None
    else:
        ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, **common)
    return ray


def run_sweep(group: str, runs: dict[str, list[str]], results: Path = RESULTS, address: str | None = None,
              workers: int | None = None, rerun: bool = False, data_dir: str | None = None) -> int:
    """Run what is not yet done of `runs` on Ray, writing results/<group>/<name>.json as each ends -> failures."""
    from tqdm.auto import tqdm

    folder = results / group
    todo = {n: f for n, f in runs.items() if rerun or not already_done(folder / f"{n}.json", f)}
    print(f"{group}: {len(runs)} runs, {len(runs) - len(todo)} already done, {len(todo)} to run", flush=True)
    if not todo:
        return 0
    ray = start_ray(address, workers)
    task = ray.remote(num_cpus=1, max_retries=0)(train_run)
    pending = {task.remote(flags, data_dir, group.startswith(EVALUATED)): name for name, flags in todo.items()}
    failed = []
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc=group, unit="run", file=sys.stdout,
               disable=None)  # a bar on a terminal; in a log the one line per run is the progress
    try:
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(ref)
            try:
                run, checkpoint = ray.get(ref)
            except Exception as exc:  # the task's own error (RunFailed), or Ray's: a killed worker, a lost node
                reason = getattr(exc, "cause", None) or exc
                failed.append(name)
                bar.write(f"{group}/{name}: FAILED ({' '.join(todo[name])}): {str(reason).strip().splitlines()[-1]}")
            else:
                run["runs_side_by_side"] = int(ray.cluster_resources().get("CPU", 1))
                write_atomically(CHECKPOINTS / group / name / "checkpoint.pt", checkpoint)
                write_atomically(folder / f"{name}.json", (json.dumps(run, indent=1) + "\n").encode())
                h = run["history"]
                bar.write(f"{group}/{name}: final {h['test_acc'][-1]:.2f}% (last 3: {h['test_acc'][-3:]}) "
                          f"| training {run['wall_seconds']:.0f}s on {run['node']}")
                bar.set_postfix_str(f"last: {name} {h['test_acc'][-1]:.2f}%")
            bar.update()
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted: {len(pending)} run(s) not finished; finished ones are kept in {folder}/. "
              f"Run the same command again to finish.", file=sys.stderr)
        ray.shutdown()
        raise SystemExit(130) from None
    bar.close()
    ray.shutdown()
    if failed:
        print(f"{len(failed)} of {len(todo)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
    return len(failed)


SCALE_RUNS = [f"--epochs 1 --subset 20000 --seed {s}" for s in range(4)]  # the same small sweep each time


def measure_scale(rounds: int = 2, workers=(1, 2)) -> dict:
    """The same small sweep on a local Ray instance with 1 and 2 workers, alternated -> results/scale.json."""
    runs = sweep_runs("flags", None, SCALE_RUNS)
    with tempfile.TemporaryDirectory() as tmp:  # untimed: caches the subset's centre lines, warms the disk cache
        run_sweep("scale", runs, Path(tmp), workers=max(workers), rerun=True)
    timings = {str(w): [] for w in workers}
    for _ in range(rounds):
        for w in workers:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                assert run_sweep("scale", runs, Path(tmp), workers=w, rerun=True) == 0
                wall = time.perf_counter() - start
                per_run = [json.loads(f.read_text())["process_wall_seconds"] for f in Path(tmp, "scale").glob("*.json")]
            timings[str(w)].append({"sweep_seconds": round(wall, 1), "run_seconds": per_run})
    from util import cpu_name

    result = {"runs": SCALE_RUNS, "cpu": cpu_name(), "cores": os.cpu_count(), "rounds": rounds, "by_workers": timings,
              "command": "python experiments.py scale"}
    write_atomically(RESULTS / "scale.json", (json.dumps(result, indent=1) + "\n").encode())
    return result


# --- the docs' tables, printed from results/ -----------------------------------------------------------------


def evaluate_group(group: str, results: Path = RESULTS, data_dir: str | None = None) -> int:
    """Add robustness.py's figures to each finished run of `group` that lacks them (its checkpoint is kept in
    runs/sweeps/), and recompute the validation figures of runs trained with a holdout -> how many were written.
    For runs that finished before their sweep was evaluated, or before a validation set existed."""
    import torch

    import robustness
    from checkpoint import load_checkpoint

    torch.set_num_threads(1)
    added = 0
    for path in sorted((results / group).glob("*.json")):
        run = json.loads(path.read_text())
        checkpoint = CHECKPOINTS / group / path.stem / "checkpoint.pt"
        holdout = run["config"].get("holdout", 0)
        if not checkpoint.is_file() or ("robustness" in run and not holdout):
            continue
        model, _ = load_checkpoint(checkpoint)
        below = verdict_below(run_flags(run))
        if "robustness" in run:  # the validation figures are cheap: recomputed, so a new validation set reaches it
            run["robustness"]["validation"] = robustness.validation(model, holdout, data_dir, below)
        else:
            run["robustness"] = robustness.evaluate(model, holdout, data_dir, below)
        write_atomically(path, (json.dumps(run, indent=1) + "\n").encode())
        print(f"{group}/{path.stem}: evaluated", flush=True)
        added += 1
    return added


EXAMPLES_EPOCHS = 2  # pytorch/examples mnist/main.py: Adadelta lr 1.0, StepLR gamma 0.7, batch 64, no augmentation


def examples_run(seed: int, data_dir: str | None = None) -> dict:
    """pytorch/examples' MNIST network trained with its own recipe, evaluated by robustness.py, one thread."""
    import torch
    import torch.nn.functional as F

    import robustness
    from bench import ExamplesNet
    from datasets import load_data
    from util import cpu_name, set_seed, test

    torch.set_num_threads(1)
    set_seed(seed)
    train_loader, test_loader = load_data(64, data_dir, seed=seed, stroke_prob=0.0)
    train_loader.augment = False  # the example trains on the plain digits
    model = ExamplesNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    start, accs = time.perf_counter(), []
    for _ in range(EXAMPLES_EPOCHS):
        model.train()
        for data, target in train_loader:
            optimizer.zero_grad()
            F.nll_loss(model(data), target).backward()
            optimizer.step()
        scheduler.step()
        accs.append(test(model, "cpu", test_loader).acc)
    return {"history": {"test_acc": accs}, "seed": seed, "wall_seconds": round(time.perf_counter() - start, 1),
            "cpu": cpu_name(), "parameters": sum(p.numel() for p in model.parameters()),
            "robustness": robustness.evaluate(model.eval(), 0, data_dir),
            "command": f"python experiments.py examples --seeds {seed}"}


def run_examples(seeds, results: Path = RESULTS, address=None, workers=None, data_dir=None) -> int:
    """The pytorch/examples network for `seeds` on Ray -> results/examples/seed<N>.json (done ones skipped)."""
    todo = [s for s in seeds if not (results / "examples" / f"seed{s}.json").is_file()]
    print(f"examples: {len(seeds)} runs, {len(seeds) - len(todo)} already done, {len(todo)} to run", flush=True)
    if not todo:
        return 0
    ray = start_ray(address, workers)
    task = ray.remote(num_cpus=1, max_retries=0)(examples_run)
    for seed, ref in [(s, task.remote(s, data_dir)) for s in todo]:
        run = ray.get(ref)
        write_atomically(results / "examples" / f"seed{seed}.json", (json.dumps(run, indent=1) + "\n").encode())
        print(f"examples/seed{seed}: final {run['history']['test_acc'][-1]:.2f}%", flush=True)
    return 0


def load_group(group: str, results: Path = RESULTS) -> dict[str, dict]:
    """results/<group>/*.json by name."""
    return {f.stem: json.loads(f.read_text()) for f in sorted((results / group).glob("*.json"))}


def _stats(accs: list[float]) -> str:
    return f"{statistics.mean(accs):.2f} ± {statistics.stdev(accs):.2f}" if len(accs) > 1 else f"{accs[0]:.2f}"


def _each(accs: list[float]) -> str:
    return ", ".join(f"{a:.2f}" for a in accs)


def final(run: dict) -> float:
    return run["history"]["test_acc"][-1]


def seed_summary(runs: list[dict]) -> tuple[list[float], float, float]:
    """Runs of one recipe over seeds -> (final accuracies, lowest of any last three epochs, mean training s)."""
    finals = [final(r) for r in runs]
    last3 = min(min(r["history"]["test_acc"][-3:]) for r in runs)
    return finals, last3, statistics.mean(r["wall_seconds"] for r in runs)


def table_sizes(results: Path = RESULTS) -> str:
    lines = ["| model | parameters | MFLOP per training image | epochs | training MFLOP | final test acc, seeds 0-4 "
             "(%) | mean ± std | min | min of last 3 epochs | training s (mean) |", "|---" * 10 + "|"]
    sizes = load_group("sizes", results)
    for size in ANSWER_SIZES:
        runs = [sizes[k] for k in sorted(sizes) if k.startswith(f"{size}-seed")]
        if runs:
            flops, epochs = runs[0]["train_flops_per_image"] / 1e6, runs[0]["config"]["epochs"]
            finals, last3, wall = seed_summary(runs)
            lines.append(f"| {size} | {runs[0]['parameters']:,} | {flops:.2f} | {epochs} | {flops * epochs:.0f} | "
                         f"{_each(finals)} | **{_stats(finals)}** | {min(finals):.2f} | {last3:.2f} | {wall:.0f} |")
    return "\n".join(lines)


def table_frontier(results: Path = RESULTS) -> str:
    lines = ["| epochs | training MFLOP | final test acc, seeds 0-4 (%) | mean ± std | min | all ≥ 99.4% |",
             "|---|---|---|---|---|---|"]
    frontier, sizes = load_group("frontier", results), load_group("sizes", results)
    redraw = {r["config"]["stroke_prob"] for r in frontier.values()}  # one recipe per table
    by_epochs: dict[int, list[dict]] = {}
    for run in list(frontier.values()) + [r for k, r in sizes.items() if k.startswith("15k-")]:
        if run["config"]["stroke_prob"] in redraw:
            by_epochs.setdefault(run["config"]["epochs"], []).append(run)
    for epochs, runs in sorted(by_epochs.items()):
        finals = [final(r) for r in runs]
        ok = "yes" if min(finals) >= 99.4 and len(finals) == len(SEEDS) else "no"
        mflop = runs[0]["train_flops_per_image"] / 1e6 * epochs
        lines.append(f"| {epochs} | {mflop:.0f} | {_each(finals)} | {_stats(finals)} | {min(finals):.2f} | {ok} |")
    return "\n".join(lines)


def _renderer_mark(report: dict) -> str:
    from userset import RENDERER

    return "" if report.get("renderer") == RENDERER else "†"


STALE_NOTE = ("† measured with the previous renderer of the handwriting sets (centre lines upsampled by Pillow, "
              "digits framed on whole pixels); the shipped checkpoint scores the same overall with both.")


def table_ablation(results: Path = RESULTS) -> str:
    ablation, robustness = load_group("ablation", results), load_group("robustness", results)
    seeds = ", ".join(map(str, ABLATION_SEEDS))
    lines = [f"| variant | train.py flags | final test acc, seeds {seeds} (%) | mean ± std | handwriting "
             f"conditions, seeds {seeds}: mean % (worst %) |", "|---|---|---|---|---|"]
    for name, flags in ABLATION.items():
        finals = [final(ablation[k]) for s in ABLATION_SEEDS if (k := f"{name}-seed{s}") in ablation]
        hand = ", ".join(f"{r['overall_accuracy']:.2f} ({r['worst']:.1f}){_renderer_mark(r)}" for s in ABLATION_SEEDS
                         if (r := robustness.get(f"{name}-seed{s}")))
        if finals:
            shown = " ".join(flags).replace(" ".join(NO_ROBUSTNESS_LEVERS), "").replace("  ", " ").strip()
            lines.append(f"| {name} | `{shown}` | {_each(finals)} | {_stats(finals)} | {hand or '-'} |")
    lines.append(f"\nEvery row also has `{' '.join(NO_ROBUSTNESS_LEVERS)}`: the recipe before the robustness levers "
                 f"(docs/robustness.md has their ablation).")
    if any(_renderer_mark(r) for r in robustness.values()):
        lines.append(f"\n{STALE_NOTE}")
    return "\n".join(lines)


def table_handwriting(results: Path = RESULTS) -> str:
    """Handwriting conditions: the seed-faithful recipe and the app model (means of their seeds), then seeds 0-4 of
    the default recipe (seed 0 answers in the shipped pair), as robustness.py measured them for experiments.py."""
    def hands(group):
        return [_robust(r)["handwriting"] for r in load_group(group, results).values() if "robustness" in r]

    default = {f"default seed {r['config']['seed']}": _robust(r)["handwriting"]
               for r in load_group("recipe", results).values() if "robustness" in r}
    if not default:
        return "(no results yet: `python experiments.py recipe`)"
    columns = {f"{name}, mean of {len(h)}": h for name, group in (("seed-faithful", "faithful"), ("app model", "app"))
               if (h := hands(group))}
    columns.update({k: [h] for k, h in default.items()})
    lines = ["| condition | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name in next(iter(default.values()))["by_condition"]:
        lines.append(f"| {name} | " + " | ".join(f"{statistics.mean(h['by_condition'][name] for h in hs):.1f}"
                                                 for hs in columns.values()) + " |")
    lines.append("| **overall** (worst) | " + " | ".join(
        f"**{statistics.mean(h['overall'] for h in hs):.2f}** ({statistics.mean(h['worst'] for h in hs):.1f})"
        for hs in columns.values()) + " |")
    return "\n".join(lines)


def table_photos(results: Path = RESULTS) -> str:
    """The photo/scan set read by the shipped checkpoint, by file format."""
    r = json.loads((results / "userset.json").read_text())
    formats = " · ".join(f"{k} {v:.1f}" for k, v in r["by_format"].items())
    refused = f"{r['refused']:.1f}" if "refused" in r else "-"
    return ("| images | accuracy (%) | answered \"not a digit / not sure\" (%) | by format (%) | command |\n"
            "|---|---|---|---|---|\n"
            f"| {r['images']:,} | **{r['accuracy']:.1f}** | {refused} | {formats} | `{r['command']}` |")


def table_hardware(results: Path = RESULTS) -> str:
    """Where each group of training runs was measured (from the result files themselves)."""
    def machine(r):  # pytorch/examples' runs record no torch version or side-by-side count
        return r["cpu"], r.get("torch", "-"), r.get("threads", 1), r.get("runs_side_by_side", "-")

    lines = ["| results | runs | CPU | torch | threads per run | runs side by side | training per run (s, median) |",
             "|---|---|---|---|---|---|---|"]
    for group in ("sizes", "frontier", "ablation", "precision", *SEED_SWEEPS, "examples", "robust-ablation",
                  "screen-reject", "screen-answer"):
        runs = list(load_group(group, results).values())
        if runs:
            for cpu, torch, threads, side in sorted({machine(r) for r in runs}, key=str):
                walls = [r["wall_seconds"] for r in runs if machine(r) == (cpu, torch, threads, side)]
                lines.append(f"| `results/{group}/` | {len(walls)} | {cpu} | {torch} | {threads} | {side} | "
                             f"{statistics.median(walls):.0f} |")
    return "\n".join(lines)


def _bench(results: Path) -> dict:
    return json.loads((results / "bench.json").read_text())


def table_speed(results: Path = RESULTS) -> str:
    """Training throughput per stage against the fp32 matmul peak (bench.py, throughput part)."""
    b = _bench(results)
    stages, m = b["stages"], b["machine"]
    lines = [f"Measured on {m['processor']}, {m['cpus']} cores, torch {m['torch']}; batch {b['batch_size']}, "
             f"the faster of two alternated rounds, each the median of {b['chunks']} chunks of "
             f"{b['steps_per_chunk']} steps; each stage alone in its process.", "",
             "| stage | model (parameters) | pipeline | precision | threads | images/s | MFLOP per training image "
             "| GFLOP/s | share of matmul peak | conv/matmul kernels: share of the step | the kernels alone: GFLOP/s "
             "(share of peak) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in stages.values():
        if "images_per_s" in s:
            lines.append(f"| {s['stage']} | {s['model']} ({s['parameters']:,}) | {s['pipeline']} | {s['precision']} "
                         f"| {s['threads']} | {s['images_per_s']:,.0f} | {s['train_flops_per_image'] / 1e6:.2f} "
                         f"| {s['gflops']:.1f} | {100 * s['share_of_matmul_peak']:.1f}% "
                         f"| {100 * s['flop_ops_share_of_step']:.0f}% | {s['flop_ops_gflops']:.0f} "
                         f"({100 * s['flop_ops_share_of_matmul_peak']:.0f}%) |")
    mm = stages["matmul"]
    lines.append(f"| fp32 matmul 1024² | | | float32 | {mm['threads']} | | | {mm['gflops']:.1f} | 100% | | |")
    lines.append(f"\nFast pipeline vs the original one, same model and batch: **{b['fast_vs_original']:.2f}×**.")
    return "\n".join(lines)


def table_threads(results: Path = RESULTS) -> str:
    """Training images/s per thread setting, idle and with other programs busy (bench.py, threads part)."""
    t = _bench(results)["threads"]
    modes = [m for m in t["images_per_s"]["idle"] if m != "auto_share_of_best_fixed"]
    name = {"auto": "default (follows free cores)", "1": "1 thread"}
    lines = ["| machine | " + " | ".join(name.get(m, f"{m} threads") for m in modes)
             + " | default vs best fixed |", "|---" * (len(modes) + 2) + "|"]
    for situation, row in t["images_per_s"].items():
        label = "idle" if situation == "idle" else f"{t['competing_processes_when_loaded']} busy process(es)"
        lines.append(f"| {label} | " + " | ".join(f"{row[m]:,.0f}" for m in modes)
                     + f" | **{100 * row['auto_share_of_best_fixed']:.0f}%** |")
    return "\n".join(lines)


def table_startup(results: Path = RESULTS) -> str:
    s = _bench(results)["startup"]
    return ("| centre lines | seconds from `python train.py` to the first training step |\n|---|---|\n"
            f"| cached (every run after the first) | **{s['warm_cache_seconds']:.1f}** (median of "
            f"{len(s['warm_runs'])}) |\n| not cached (the first run on a machine) | {s['cold_cache_seconds']:.1f} |")


def table_app(results: Path = RESULTS) -> str:
    a = _bench(results)["app"]
    lines = [f"{a['clients']} concurrent API clients sending {a['digits_each']} MNIST test digits each, "
             f"{a['rounds']} rounds of every setting, alternated; CPU seconds of the app and of the clients:", "",
             "| clients | concurrency per event | answered | errors | wrong | p50 latency (s) | p95 latency (s) "
             "| requests/s | app CPU (s) | clients' CPU (s) | slowest page load meanwhile (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(a["runs"], key=lambda r: (r["client"], r["concurrency"])):
        lines.append(f"| {r['client']} | {r['concurrency']} | {r['answered']}/{r['requests']} | {len(r['errors'])} | "
                     f"{r['wrong']} | {r['p50_s']:.2f} | {r['p95_s']:.2f} | {r['requests_per_s']:.1f} | "
                     f"{r['app_cpu_s']:.1f} | {r['clients_cpu_s']:.1f} | {r['page_load_max_s']} |")
    return "\n".join(lines)


def table_precision(results: Path = RESULTS) -> str:
    """The default recipe in float32 and with bfloat16 autocast, seeds 0-4, on one machine."""
    runs = load_group("precision", results)
    lines = ["| precision | final test acc, seeds 0-4 (%) | mean ± std | min of last 3 epochs | training s (mean) "
             "| CPU |", "|---|---|---|---|---|---|"]
    for precision in ("float32", "bfloat16"):
        group = [r for r in runs.values() if r["config"]["precision"] == precision]
        if group:
            finals, last3, wall = seed_summary(sorted(group, key=lambda r: r["config"]["seed"]))
            lines.append(f"| {precision} | {_each(finals)} | **{_stats(finals)}** | {last3:.2f} | {wall:.0f} | "
                         f"{group[0]['cpu']} |")
    return "\n".join(lines)


def table_scale(results: Path = RESULTS) -> str:
    """1 vs 2 Ray workers on the same small sweep, measured (results/scale.json)."""
    s = json.loads((results / "scale.json").read_text())
    lines = [f"`{s['command']}`: {len(s['runs'])} runs (`{s['runs'][0].rsplit(' --seed', 1)[0]}`, seeds 0–"
             f"{len(s['runs']) - 1}) on {s['cpu']}, {s['cores']} cores, {s['rounds']} rounds alternated.", "",
             "| Ray workers | sweep wall time, each round (s) | one run's process, mean (s) | speed-up |",
             "|---|---|---|---|"]
    base = statistics.median(r["sweep_seconds"] for r in s["by_workers"]["1"])
    for w, rounds in s["by_workers"].items():
        walls = [r["sweep_seconds"] for r in rounds]
        per_run = statistics.mean(t for r in rounds for t in r["run_seconds"])
        lines.append(f"| {w} | {', '.join(f'{x:.1f}' for x in walls)} | {per_run:.1f} | "
                     f"**{base / statistics.median(walls):.2f}×** |")
    return "\n".join(lines)


def table_cluster(results: Path = RESULTS) -> str:
    """The full sweep's cost on paper, from the committed runs' own wall times."""
    groups = {g: list(load_group(g, results).values()) for g in ("sizes", "frontier", "ablation")}
    runs = [r for rs in groups.values() for r in rs]
    total = sum(r["process_wall_seconds"] for r in runs)
    longest = max(r["process_wall_seconds"] for r in runs)
    lines = [f"{len(runs)} runs ({', '.join(f'{g} {len(rs)}' for g, rs in groups.items())}), one thread each, "
             f"{total / 3600:.1f} h of single-thread process time in all, the longest run {longest:.0f} s "
             f"(`process_wall_seconds` in the result files).", "",
             "| where | workers | lower bound: max(total / workers, longest run) |", "|---|---|---|"]
    for where, workers in (("one 2-core laptop", 2), ("4 nodes × 8 cores", 32), ("8 nodes × 16 cores", 128)):
        lines.append(f"| {where} | {workers} | {max(total / workers, longest) / 60:.0f} min |")
    return "\n".join(lines)


ROBUST_ROWS = {  # table row -> results group (five seeds each, unless the files say otherwise)
    "default recipe": "recipe",
    f"rejection model (`{' '.join(REJECT)}`; its verdict is shipped, its answers are not)": "reject",
    "60k rejection model (without `--not-digit-curves 0.5 --epochs 18`, shipped before)": "reject-60k",
    "60k rejection model with smooth scribbles, 12 epochs (without `--epochs 18`, not shipped)": "reject-curves",
    "15k rejection model (the 60k one without `--model 60k`, shipped before it)": "reject-15k",
    "15k rejection model without printed digits (without `--digit-printed`)": "reject-previous",
    "15k rejection model without printed digits or low-resolution images (`--low-res 0`)": "reject-no-low-res",
    f"app model (`{' '.join(APP)}`, shipped before the rejection model)": "app",
    "default without random erasing (`--erase 0`)": "recipe-no-erase",
    "default erasing twice as often (`--erase 0.1`, the previous default)": "recipe-erase-0.1",
    "default with three times the redrawn strokes (`--stroke-prob 0.3`)": "recipe-stroke-0.3",
    "default with printed digits (`--digit-printed 0.1`)": "recipe-printed-0.1",
    "default with low-resolution images (`--low-res 0.2`)": "recipe-low-res-0.2",
    "default with low-resolution images, 19 epochs (`--low-res 0.2 --epochs 19`)": "recipe-low-res-0.2-e19",
    "default with thickened strokes (`--thicken 0.2`)": "recipe-thicken-0.2",
    "seed-faithful recipe (`--stroke-prob 0`, no robustness levers)": "faithful",
    "pytorch/examples network (1.2M parameters, 2 epochs)": "examples",
    "stronger augmentation (`--shift 2 --elastic 1.5 --noise 0.3 --erase 0.25 --not-digits 0.25`)": "robust",
}


def _robust(run: dict) -> dict:
    return run.get("robustness", {})


EARLIER_BELOW = 0.5  # the verdict threshold of every result written before the files recorded theirs


def _below(not_a_digit: list[dict]) -> str:
    """The verdict threshold the not-a-digit figures were measured at, when it is not the models' own (0.5)."""
    belows = {n.get("reject_below", EARLIER_BELOW) for n in not_a_digit}
    return "" if belows == {EARLIER_BELOW} else f" (under {', '.join(map(str, sorted(belows)))})"


def _mean(values) -> str:
    values = list(values)
    return _stats(values) if values else "-"


def table_robustness(results: Path = RESULTS) -> str:
    lines = ["| model | seeds | clean test acc (%) | MNIST-C mean (%) | MNIST-C worst (%) | handwriting: overall "
             "(worst) (%) | not-a-digit set refused (%) | MNIST test digits refused (%) |",
             "|---|---|---|---|---|---|---|---|"]
    for row, group in ROBUST_ROWS.items():
        runs = [r for r in load_group(group, results).values() if "robustness" in r]
        if not runs:
            continue
        rob = [_robust(r) for r in runs]
        worst = ", ".join(f"{x['mnist_c']['worst_acc']:.1f} ({x['mnist_c']['worst'].replace('_', ' ')})" for x in rob)
        hand = ", ".join(f"{x['handwriting']['overall']:.2f} ({x['handwriting']['worst']:.1f})" for x in rob)
        lines.append(f"| {row} | {', '.join(str(r.get('config', r).get('seed')) for r in runs)} | "
                     f"{_each([final(r) for r in runs])} ({_mean(final(r) for r in runs)}) | "
                     f"{_mean(x['mnist_c']['mean'] for x in rob)} | {worst} | {hand} | "
                     f"{_mean(x['not_a_digit']['non_digits_refused_mean'] for x in rob)}"
                     f"{_below([x['not_a_digit'] for x in rob])} | "
                     f"{_mean(x['not_a_digit']['mnist_test_refused'] for x in rob)} |")
    return "\n".join(lines)


# The bars a recipe of the answering model is held to, over seeds 0-4 (% test accuracy unless said).
CLEAN_MEAN_BAR, CLEAN_SEED_BAR, CLEAN_LAST3_BAR = 99.55, 99.50, 99.45  # the mean; every seed; its last 3 epochs
MNIST_C_MEAN_BAR, MNIST_C_WORST_BAR = 95.0, 85.0  # mean over the 15 corruptions and seeds; every seed's worst one
HANDWRITING_BAR, HANDWRITING_WORST_BAR = 98.5, 97.5  # every seed overall; every seed's worst condition
# ... and the verdict (% refused): the shipped pair's not-a-digit set; every seed's MNIST test digits; the photo set.
NOT_A_DIGIT_BAR, TEST_DIGITS_REFUSED_BAR, PHOTOS_REFUSED_BAR = 90.0, 1.0, 2.0


def _against(value: float, text: str, bar: float, at_most: bool = False) -> tuple[str, bool]:
    """`text` marked met or missed against `bar` (a floor, or with `at_most` a ceiling)."""
    met = value <= bar if at_most else value >= bar
    return f"{text} {'✓' if met else '✗'}", met


def table_targets(results: Path = RESULTS) -> str:
    """Every five-seed recipe of the answering model against the robustness bars, then the verdict's."""
    lines = [f"| answering recipe (seeds 0-4) | clean mean (≥ {CLEAN_MEAN_BAR}) | lowest seed (≥ {CLEAN_SEED_BAR:.2f}) "
             f"/ lowest of its last 3 epochs (≥ {CLEAN_LAST3_BAR}) | MNIST-C mean (≥ {MNIST_C_MEAN_BAR:.0f}) / "
             f"lowest seed's worst corruption (≥ {MNIST_C_WORST_BAR:.0f}) | handwriting conditions: lowest seed "
             f"(≥ {HANDWRITING_BAR}) / lowest worst condition (≥ {HANDWRITING_WORST_BAR}) | bars missed |",
             "|---|---|---|---|---|---|"]
    for row, group in ROBUST_ROWS.items():
        if not (group.startswith("recipe") or group == "faithful"):  # answering recipes only
            continue
        runs = [r for r in load_group(group, results).values() if "robustness" in r]
        if len(runs) < 5:
            continue
        finals, last3, _ = seed_summary(runs)
        rob = [_robust(r) for r in runs]
        mean = statistics.mean(finals)
        mnist_c = statistics.mean(x["mnist_c"]["mean"] for x in rob)
        worst_c = min(x["mnist_c"]["worst_acc"] for x in rob)
        hand, hand_worst = (min(x["handwriting"][k] for x in rob) for k in ("overall", "worst"))
        cells = [_against(mean, f"{mean:.3f}", CLEAN_MEAN_BAR), _against(min(finals), f"{min(finals):.2f}",
                 CLEAN_SEED_BAR), _against(last3, f"{last3:.2f}", CLEAN_LAST3_BAR),
                 _against(mnist_c, f"{mnist_c:.2f}", MNIST_C_MEAN_BAR), _against(worst_c, f"{worst_c:.1f}",
                 MNIST_C_WORST_BAR), _against(hand, f"{hand:.2f}", HANDWRITING_BAR),
                 _against(hand_worst, f"{hand_worst:.1f}", HANDWRITING_WORST_BAR)]
        text = [c[0] for c in cells]
        lines.append(f"| {row} | {text[0]} | {text[1]} / {text[2]} | {text[3]} / {text[4]} | {text[5]} / {text[6]} "
                     f"| {sum(not c[1] for c in cells)} of {len(cells)} |")
    lines += ["", f"| rejection model | not-a-digit set refused: seed 0 (≥ {NOT_A_DIGIT_BAR:.0f}) / five-seed mean | "
              f"MNIST test digits refused: highest seed (≤ {TEST_DIGITS_REFUSED_BAR:.0f}) | photo set refused with the "
              f"shipped answering model (≤ {PHOTOS_REFUSED_BAR:.0f}) |", "|---|---|---|---|"]
    refused = json.loads((results / "userset.json").read_text())["refused"]  # read by the shipped pair only
    photos = _against(refused, f"{refused:.1f}", PHOTOS_REFUSED_BAR, at_most=True)[0]
    for row, group in ROBUST_ROWS.items():
        if not group.startswith("reject"):
            continue
        runs = {r["config"]["seed"]: r for r in load_group(group, results).values() if "robustness" in r}
        if 0 not in runs:
            continue
        nds = [_robust(r)["not_a_digit"] for r in runs.values()]
        seed0 = _robust(runs[0])["not_a_digit"]["non_digits_refused_mean"]
        digits = max(n["mnist_test_refused"] for n in nds)
        lines.append(f"| {row} | {_against(seed0, f'{seed0:.1f}', NOT_A_DIGIT_BAR)[0]} / "
                     f"{statistics.mean(n['non_digits_refused_mean'] for n in nds):.1f} | "
                     f"{_against(digits, f'{digits:.2f}', TEST_DIGITS_REFUSED_BAR, at_most=True)[0]} | "
                     f"{photos if group == 'reject' else '-'} |")
    return "\n".join(lines)


def table_recipe(results: Path = RESULTS) -> str:
    """The README's view: the default recipe seed by seed, with the verdict of the rejection model of the same seed."""
    recipe = {r["config"]["seed"]: r for r in load_group("recipe", results).values() if "robustness" in r}
    reject = {r["config"]["seed"]: r for r in load_group("reject", results).values() if "robustness" in r}
    if not recipe or not reject:
        return "(no results yet: `python experiments.py recipe` and `reject`)"
    lines = ["| seed | clean test acc (%) | MNIST-C mean / worst (%) | with its rejection model: not-a-digit set "
             "refused (%) | test digits refused (%) |", "|---|---|---|---|---|"]

    def corrupted(run):
        return _robust(run)["mnist_c"]["mean"], _robust(run)["mnist_c"]["worst_acc"]

    for seed in sorted(recipe):
        (cm, cw), nd = corrupted(recipe[seed]), _robust(reject[seed])["not_a_digit"] if seed in reject else None
        verdict = f"{nd['non_digits_refused_mean']:.1f} | {nd['mnist_test_refused']:.2f}" if nd else "- | -"
        lines.append(f"| {seed} | {final(recipe[seed]):.2f} | {cm:.1f} / {cw:.1f} | {verdict} |")
    rc, nds = [corrupted(r) for r in recipe.values()], [_robust(r)["not_a_digit"] for r in reject.values()]
    lines.append(f"| **mean** | **{_stats([final(r) for r in recipe.values()])}** | "
                 f"{statistics.mean(m for m, _ in rc):.1f} / {min(w for _, w in rc):.1f} (min) | "
                 f"{statistics.mean(n['non_digits_refused_mean'] for n in nds):.1f} | "
                 f"{statistics.mean(n['mnist_test_refused'] for n in nds):.2f} |")
    return "\n".join(lines)


def table_mnist_c(results: Path = RESULTS) -> str:
    from mnist_c import CORRUPTIONS

    groups = {row: [_robust(r)["mnist_c"] for r in load_group(g, results).values() if "robustness" in r]
              for row, g in ROBUST_ROWS.items()}
    groups = {row: v for row, v in groups.items() if v}
    lines = ["| corruption | " + " | ".join(row.split(" (")[0] for row in groups) + " |",
             "|---|" + "---|" * len(groups)]
    for name in CORRUPTIONS:
        lines.append(f"| {name.replace('_', ' ')} | "
                     + " | ".join(f"{statistics.mean(m['corruptions'][name] for m in v):.1f}" for v in groups.values())
                     + " |")
    lines.append("\nMean over the seeds of each row (table above); every corruption at the published default severity.")
    return "\n".join(lines)


def table_not_a_digit(results: Path = RESULTS) -> str:
    """Per kind: the rejection model seed by seed (the shipped verdict), then the means of the models that give
    their own verdict."""
    groups = {"reject-60k": "60k rejection model, 12 epochs, no smooth scribbles",
              "reject-curves": "60k rejection model with smooth scribbles, 12 epochs",
              "reject-15k": "15k rejection model", "reject-previous": "15k rejection model without printed digits",
              "recipe": "default alone", "app": "app model alone"}
    runs = [r for r in load_group("reject", results).values() if "robustness" in r]
    if not runs:
        return "(no results yet: `python experiments.py reject`)"
    kinds = list(_robust(runs[0])["not_a_digit"]["non_digits_refused"])
    lines = ["| verdict by | " + " | ".join(kinds) + " | mean | characters never trained on | MNIST test digits "
             "refused |", "|---|" + "---|" * (len(kinds) + 3)]

    def row(name: str, nds: list[dict]) -> str:
        never = [n["never_trained_glyphs_refused"] for n in nds if "never_trained_glyphs_refused" in n]
        return (f"| {name}{_below(nds)} | "
                + " | ".join(f"{statistics.mean(n['non_digits_refused'][k] for n in nds):.1f}" for k in kinds)
                + f" | {statistics.mean(n['non_digits_refused_mean'] for n in nds):.1f} | "
                + (f"{statistics.mean(never):.1f}" if never else "-")
                + f" | {statistics.mean(n['mnist_test_refused'] for n in nds):.2f} |")

    for r in runs:
        lines.append(row(f"rejection model, seed {r['config']['seed']}", [_robust(r)["not_a_digit"]]))
    for group, name in groups.items():
        nds = [_robust(r)["not_a_digit"] for r in load_group(group, results).values() if "robustness" in r]
        if nds:
            lines.append(row(f"{name} (mean of {len(nds)} seeds)", nds))
    return "\n".join(lines)


def table_threshold(results: Path = RESULTS, group: str = "threshold") -> str:
    runs = load_group(group, results)
    if not runs:
        return "(no results yet)"
    seeds = ", ".join(name.removeprefix("seed") for name in runs)
    columns = {"digits_refused": f"held-out training digits refused (%), seeds {seeds}",
               "conditions_refused": "the same in people's pens (the handwriting conditions) refused (%)",
               "not_digits_refused": "generated non-digits refused (%)",
               "printed_refused": "printed letters and signs, validation faces, refused (%)",
               "curves_refused": "pen curves refused (%)",
               "drawn_even_accepted": "drawn shapes right and accepted, even hands (%)",
               "low_res_even_accepted": "the same scanned small (%)"}
    first = next(iter(runs.values()))
    columns = {k: v for k, v in columns.items() if k in first["0.5"]}  # older files lack the later columns
    lines = ["| threshold | " + " | ".join(columns.values()) + " |", "|---" * (len(columns) + 1) + "|"]
    for t in first:
        if t != "command":
            lines.append(f"| {t} | " + " | ".join(_each([r[t][k] for r in runs.values()]) for k in columns) + " |")
    return "\n".join(lines)


def table_printed(results: Path = RESULTS) -> str:
    variants = ("printed", "low-res scan", "pen-redrawn")
    lines = ["| model | " + " | ".join(f"{v}: all (held-out faces)" for v in variants) + " |", "|---|---|---|---|"]
    rows = {row: [_robust(r)["printed_digits"] for r in load_group(group, results).values()
                  if "printed_digits" in _robust(r)] for row, group in ROBUST_ROWS.items()}
    if (results / "pairs.json").is_file():  # the default's answers with the rejection model's verdict
        pairs = json.loads((results / "pairs.json").read_text())["pairs"].values()
        rows = {"default + rejection model (the shipped pair)": [p["printed_digits"] for p in pairs], **rows}
    for row, runs in rows.items():
        if runs:
            lines.append(f"| {row.split(' (')[0]} | " + " | ".join(
                f"{statistics.mean(p[v]['all'] for p in runs):.1f} "
                f"({statistics.mean(p[v]['faces_odd_held_out'] for p in runs):.1f})" for v in variants) + " |")
    note = "\nMean over each row's seeds; a digit answered \"not a digit / not sure\" counts as wrong."
    return "\n".join([*lines, note])


def table_variants(results: Path = RESULTS) -> str:
    """robustness.py --variants: each hand-drawn shape, read by the default recipe alone (and with printed digits
    among its training digits) and with the verdict of the rejection model (the shipped pair), of the 12-epoch 60k
    and the 15k ones before it, and of the one before the printed digits; seeds as the files hold them."""
    alone = json.loads((results / "variants.json").read_text())
    files = {"default + rejection model": "pairs.json", "default + 12-epoch 60k": "pairs-60k.json",
             "default + 15k rejection model": "pairs-15k.json",
             "default + 15k without printed digits": "pairs-previous.json"}
    sweeps = {"default with printed digits, alone": "recipe-printed-0.1"}  # shapes measured in each run's file
    pairs = {name: json.loads((results / f).read_text()) for name, f in files.items()}
    groups = {"default alone": [m for m in alone["models"].values() if not m["config"]["not_digits"]]}
    for name, group in sweeps.items():
        groups[name] = [{**r["robustness"]["variant_digits"], "config": r["config"]}
                        for r in load_group(group, results).values()]
    for name, p in pairs.items():  # robustness.py --rejector nests the shapes, --variants --rejector does not
        groups[name] = [{**m.get("variant_digits", m), "config": m["config"]} for m in p["pairs"].values()]
    kinds = ("drawn", "low-res scan")
    head = " | ".join(f"{g}: {k}" for g in groups for k in kinds)
    lines = [f"| shape | {head} |", "|---" * (1 + 2 * len(groups)) + "|"]
    for shape in groups["default alone"][0]["drawn"]:
        cells = [f"{statistics.mean(m[k][shape]['all'] for m in ms):.0f} "
                 f"({statistics.mean(m[k][shape]['draws_odd_held_out'] for m in ms):.0f})"
                 for ms in groups.values() for k in kinds]
        lines.append(f"| {shape} | " + " | ".join(cells) + " |")
    seeds = "; ".join(f"{g}: seeds {', '.join(str(m['config']['seed']) for m in ms)}" for g, ms in groups.items())
    commands = ", ".join([f"`{alone['command']}`", *(f"`python experiments.py {g}`" for g in sweeps.values()),
                          *(f"`{r['command']}`" for r in pairs.values())])
    note = (f"\n% read right and not refused, mean over the seeds ({seeds}; in parentheses the held-out half of the "
            f"hands); {commands}.")
    return "\n".join([*lines, note])


def table_robust_ablation(results: Path = RESULTS) -> str:
    runs = load_group("robust-ablation", results)
    lines = ["| variant (after the app model's levers, `--holdout 5000`) | seeds | validation clean (%) | validation "
             "perturbed (%) | validation: digits / generated non-digits refused (%) | reported only: test acc (%) | "
             "MNIST-C mean (worst) | not-a-digit set refused (%) | of it, glyphs outside training's alphabet (%) | "
             "test digits refused (%) | printed digits as low-res scans, even faces (%) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, flags in ROBUST_ABLATION.items():
        rs = [r for s in ABLATION_SEEDS if (r := runs.get(f"{name}-seed{s}")) and "robustness" in r]
        if not rs:
            continue
        rob = [_robust(r) for r in rs]
        lines.append(f"| {name} `{' '.join(flags)}` | {', '.join(str(r['config']['seed']) for r in rs)} | "
                     f"{_mean(x['validation']['accuracy']['clean'] for x in rob)} | "
                     f"{_mean(x['validation']['perturbed_mean'] for x in rob)} | "
                     f"{_mean(x['validation']['digits_refused'] for x in rob)} / "
                     f"{_mean(x['validation']['not_digits_refused'] for x in rob)} | {_mean(final(r) for r in rs)} | "
                     f"{_mean(x['mnist_c']['mean'] for x in rob)} ({_mean(x['mnist_c']['worst_acc'] for x in rob)}) | "
                     f"{_mean(x['not_a_digit']['non_digits_refused_mean'] for x in rob)} | "
                     f"{_mean(u for x in rob if (u := x['not_a_digit'].get('unseen_glyphs_refused')) is not None)} | "
                     f"{_mean(x['not_a_digit']['mnist_test_refused'] for x in rob)} | "
                     f"{_mean(p['low-res scan']['faces_even'] for x in rob if (p := x.get('printed_digits')))} |")
    lines.append(f"\nEvery row starts from `{' '.join(ROBUST_BASE)}`.")
    return "\n".join(lines)


SCREEN_GROUPS = ("screen", "screen2", "screen3")


def _even_drawn(robust: dict, kind: str = "drawn") -> float:
    """Mean over the hand-drawn shapes (`kind`: drawn or low-res scan) of the even hands read right and accepted
    (the half that may guide a choice)."""
    return statistics.mean(v["draws_even"] for v in robust["variant_digits"][kind].values())


def _by_flags(runs: dict[str, dict], common: str) -> dict[str, list[dict]]:
    """Runs that have robustness figures, grouped by their train.py flags without the seed and the flags `common`
    to every row."""
    by_flags: dict[str, list[dict]] = {}
    for run in runs.values():
        if "robustness" in run:
            flags = " ".join(run_flags(run)).rsplit(" --seed", 1)[0]
            by_flags.setdefault(flags.replace(common, "").strip(), []).append(run)
    return by_flags


def table_reject_screen(results: Path = RESULTS) -> str:
    """The rejection model's candidates (screen-reject): chosen on the validation columns only."""
    lines = ["| train.py flags (all: `--epochs 12 --holdout 5000`) | seeds | validation: digits refused (%) | "
             "generated non-digits refused (%) | printed letters and signs, validation faces, refused (%) | "
             "pen curves refused (%) | drawn shapes right and accepted, even hands: drawn / low-res scan (%) | "
             "reported only: not-a-digit set refused (%) | of it, characters never trained on (%) | "
             "test digits refused (%) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for flags, rs in _by_flags(load_group("screen-reject", results), "--epochs 12 --holdout 5000").items():
        rob = [_robust(r) for r in rs]
        lines.append(f"| `{flags}` | {', '.join(str(r['config']['seed']) for r in rs)} | "
                     f"{_mean(x['validation']['digits_refused'] for x in rob)} | "
                     f"{_mean(x['validation']['not_digits_refused'] for x in rob)} | "
                     f"{_mean(x['validation']['printed_refused'] for x in rob)} | "
                     f"{_mean(x['validation']['curves_refused'] for x in rob)} | "
                     f"{_mean(_even_drawn(x) for x in rob)} / {_mean(_even_drawn(x, 'low-res scan') for x in rob)} | "
                     f"{_mean(x['not_a_digit']['non_digits_refused_mean'] for x in rob)} | "
                     f"{_mean(x['not_a_digit']['never_trained_glyphs_refused'] for x in rob)} | "
                     f"{_mean(x['not_a_digit']['mnist_test_refused'] for x in rob)} |")
    return "\n".join(lines)


def table_answer_screen(results: Path = RESULTS) -> str:
    """The default recipe's candidates (screen-answer, 18 epochs unless a row says otherwise): chosen on the
    validation columns and the even half of the drawn shapes and printed faces only."""
    lines = ["| train.py flags (all: `--holdout 5000`, the rest default) | seeds | validation: clean (%) | "
             "perturbed mean (%) | thick pen (%) | drawn shapes right, even hands: drawn / low-res scan (%) | "
             "printed digits scanned small, even faces (%) | reported only: test acc (%) | MNIST-C mean (worst) (%) |",
             "|---|---|---|---|---|---|---|---|---|"]
    by_flags = _by_flags(load_group("screen-answer", results), "--holdout 5000")
    for flags, rs in sorted(by_flags.items(), key=lambda item: item[0] != ""):  # the default's row first
        rob = [_robust(r) for r in rs]
        v = [x["validation"] for x in rob]
        lines.append(f"| `{flags or '(default)'}` | {', '.join(str(r['config']['seed']) for r in rs)} | "
                     f"{_mean(x['accuracy']['clean'] for x in v)} | {_mean(x['perturbed_mean'] for x in v)} | "
                     f"{_mean(x['accuracy']['thick pen'] for x in v)} | "
                     f"{_mean(_even_drawn(x) for x in rob)} / {_mean(_even_drawn(x, 'low-res scan') for x in rob)} | "
                     f"{_mean(x['printed_digits']['low-res scan']['faces_even'] for x in rob)} | "
                     f"{_mean(final(r) for r in rs)} | "
                     f"{_mean(x['mnist_c']['mean'] for x in rob)} ({_mean(x['mnist_c']['worst_acc'] for x in rob)}) |")
    return "\n".join(lines)


def table_robust_screen(results: Path = RESULTS) -> str:
    lines = ["| train.py flags (all: `--epochs 5 --holdout 5000`) | seeds | validation: clean | perturbed mean | "
             "digits refused | generated non-digits refused | reported only: MNIST-C mean (worst) | "
             "not-a-digit set refused |", "|---|---|---|---|---|---|---|---|"]
    for group in SCREEN_GROUPS:
        for flags, runs in _by_flags(load_group(group, results), "--epochs 5 --holdout 5000").items():
            flags = flags or "(old default)"
            v = [_robust(r)["validation"] for r in runs]
            c = [_robust(r)["mnist_c"] for r in runs]
            lines.append(f"| `{flags}` | {', '.join(str(r['config']['seed']) for r in runs)} | "
                         f"{_mean(x['accuracy']['clean'] for x in v)} | {_mean(x['perturbed_mean'] for x in v)} | "
                         f"{_mean(x['digits_refused'] for x in v)} | {_mean(x['not_digits_refused'] for x in v)} | "
                         f"{_mean(x['mean'] for x in c)} ({_mean(x['worst_acc'] for x in c)}) | "
                         f"{_mean(_robust(r)['not_a_digit']['non_digits_refused_mean'] for r in runs)} |")
    return "\n".join(lines)


# robustness.py --thresholds tables, one folder of seed files each: the app model's, then the rejection models'
THRESHOLD_GROUPS = ("threshold", "threshold-reject", "threshold-reject-31k", "threshold-reject-60k",
                    "threshold-reject-60k-e18", "threshold-reject-60k-curves", "threshold-reject-60k-curves-e18",
                    "threshold-reject-60k-curves1-e18", "threshold-reject-60k-curves-e18-w1",
                    "threshold-reject-60k-curves-e18-nd2x", "threshold-reject-60k-curves-e18-hershey",
                    "threshold-reject-60k-curves-e18-elastic2", "threshold-reject-60k-curves-e18-thicken",
                    "threshold-reject-60k-curves-e24", "threshold-reject-60k-curves-e18-consistency4",
                    "threshold-reject-120k")
TABLES = {"sizes": table_sizes, "frontier": table_frontier, "ablation": table_ablation,
          "handwriting": table_handwriting, "photos": table_photos, "hardware": table_hardware,
          "speed": table_speed, "threads": table_threads, "startup": table_startup, "app": table_app,
          "scale": table_scale, "cluster": table_cluster, "precision": table_precision,
          "robustness": table_robustness, "targets": table_targets, "recipe": table_recipe, "mnist_c": table_mnist_c,
          "not_a_digit": table_not_a_digit, "robust_screen": table_robust_screen,
          **{group.replace("-", "_"): functools.partial(table_threshold, group=group) for group in THRESHOLD_GROUPS},
          "printed": table_printed,
          "variants": table_variants, "robust_ablation": table_robust_ablation, "reject_screen": table_reject_screen,
          "answer_screen": table_answer_screen}
BLOCK = re.compile(r"<!-- report: (\w+) -->\n(?:(?:(?!<!--).)*\n)?<!-- /report -->", re.S)


def render_docs(text: str, results: Path = RESULTS) -> str:
    """`text` with every `<!-- report: NAME -->` block replaced by the table printed from `results`."""
    return BLOCK.sub(lambda m: f"<!-- report: {m.group(1)} -->\n{TABLES[m.group(1)](results)}\n<!-- /report -->", text)


def main(argv: list[str] | None = None) -> int:
    """CLI: run a sweep (exit 1 if any run failed) or print/write the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", choices=("sizes", "frontier", "ablation", "robust-ablation", *SEED_SWEEPS, "flags",
                                     "examples", "evaluate", "report", "scale"))
    p.add_argument("flag_sets", nargs="*", metavar="NAME FLAGS",
                   help="with `flags`: the results folder name, then one quoted train.py flag set per run")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: 0-4; ablation 0 1; flags: as given)")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="a Ray cluster (auto, or ray://HOST:10001); default $RAY_ADDRESS, else a local instance")
    p.add_argument("--workers", type=int, help="local instance only: runs at a time (default: one per core)")
    p.add_argument("--rerun", action="store_true", help="run again even where a result with the same config exists")
    p.add_argument("--data-dir", help="MNIST root on the workers (default: each finds it the usual way)")
    p.add_argument("--results", type=Path, default=RESULTS, help="results folder (default results/)")
    p.add_argument("--write", action="store_true", help="report: write the tables into README.md and docs/")
    a = p.parse_args(argv)
    if a.sweep == "report":
        for doc in DOCS:
            text = doc.read_text()
            new = render_docs(text, a.results)
            if a.write and new != text:
                doc.write_text(new)
                print(f"updated {doc.relative_to(ROOT)}")
        if not a.write:
            print("\n\n".join(f"## {name}\n\n{table(a.results)}" for name, table in TABLES.items()))
        return 0
    if a.sweep == "scale":
        print(json.dumps(measure_scale()["by_workers"]))
        return 0
    if a.sweep == "evaluate":  # NAME...: add robustness figures to finished runs of these groups
        for group in a.flag_sets:
            evaluate_group(group, a.results, a.data_dir)
        return 0
    if a.sweep == "examples":
        return run_examples(tuple(a.seeds) if a.seeds else SEEDS, a.results, a.address, a.workers, a.data_dir)
    if a.sweep == "flags":
        if len(a.flag_sets) < 2:
            p.error("flags needs a name and at least one flag set: experiments.py flags NAME \"--epochs 3\" ...")
        group, flag_sets = a.flag_sets[0], a.flag_sets[1:]
    elif a.flag_sets:
        p.error(f"{a.sweep} takes no flag sets (they are for `flags`)")
    else:
        group, flag_sets = a.sweep, []
    runs = sweep_runs(a.sweep, tuple(a.seeds) if a.seeds else None, flag_sets)
    for flags in runs.values():  # every flag set is checked here, before any task starts
        comparable_config(flags)
    failures = run_sweep(group, runs, a.results, a.address, a.workers, a.rerun, a.data_dir)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
