"""The sweeps behind every accuracy claim, each training run one Ray task, and the command that prints the tables.

    python -m evidence.experiments sizes            # 15k, 8k and 4k x seeds 0-4, recipe PREVIOUS -> results/sizes/
    python -m evidence.experiments ablation         # the training recipe's ablation, seeds 0 and 1 -> results/ablation/
    python -m evidence.experiments robust-ablation  # the robustness levers' ablation, seeds 0 and 1
    python -m evidence.experiments recipe           # the default recipe x seeds 0-4, with robustness.py's figures
    python -m evidence.experiments reject           # the shipped rejection model x seeds 0-4, the same at its threshold
    python -m evidence.experiments faithful         # the seed project's recipe on this model x seeds 0-4, the same
    python -m evidence.experiments examples         # pytorch/examples' network x seeds 0-4, the same figures
    python -m evidence.experiments flags NAME "--epochs 5" "--lr 0.1"   # any train.py flag sets -> results/NAME/
    python -m evidence.experiments evaluate NAME    # add robustness.py's figures to NAME's finished runs (and
                                                    # recompute the validation figures of --holdout runs)
    python -m evidence.experiments report [--write] # the docs' tables from results/ (--write puts them into the docs)
    python -m evidence.experiments scale            # the same small sweep on 1 and 2 workers -> results/scale.json

The sweeps themselves are data (evidence/sweeps.py: SWEEPS); the tables are evidence/report.py. Local by default: a
Ray instance on this machine runs one training run per core, one thread each. With `--address auto` (a running
`ray start --head`) or `--address ray://HOST:10001` (or $RAY_ADDRESS) the same tasks go to a cluster: the project's
code travels as Ray's working directory (without data, runs, results, caches or the venv), each worker finds MNIST
the usual way ($MNIST_DATA_DIR, ./data, or a download), and results and checkpoints come back to this machine.
Resumable: a run whose result file exists and holds the same config is skipped (`--rerun` runs it again), so Ctrl-C,
a crashed worker or a lost node costs only the runs in flight. A run that fails is reported with its flags and error
while the others go on; the sweep then exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evidence.report import DOCS, RESULTS, ROOT, TABLES, render_docs
from evidence.sweeps import (
    EVALUATED,
    SEEDS,
    SWEEPS,
    already_done,
    comparable_config,
    flag_set_runs,
    run_flags,
    same_config,
    sweep_runs,
    verdict_below,
)

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before ray is imported: no usage reports home



def run_folders(results: Path) -> Path:
    """Where each run of a sweep trains, beside its results folder: runs/sweeps/GROUP/NAME/ (git-ignored) keeps its
    finished epochs while it runs, and its checkpoint.pt afterwards, to evaluate it later."""
    return results.resolve().parent / "runs" / "sweeps"

WORKING_DIR_EXCLUDES = [".git", ".venv", "data", "runs", "results", "checkpoints", "docs", "tests", "__pycache__",
                        ".pytest_cache", ".ruff_cache", "*.onnx", "*.ipynb", "*.png"]


class RunFailed(RuntimeError):
    """train.py exited with an error; the message holds its flags, exit code and last lines."""


def _stop_with_parent() -> None:
    """In the train.py child: SIGTERM when the worker that started it dies (Linux), so a stopped sweep leaves no
    run behind writing to its folder; train.py keeps its last finished epoch and exits."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def resumable(run_dir: Path, flags: list[str]) -> bool:
    """Whether `run_dir` holds an unfinished run of the config `flags` give, that train.py --resume can continue."""
    from checkpoint import STATE_FILE, load_state

    try:
        state = load_state(run_dir / STATE_FILE)
    except (OSError, ValueError):  # none yet, or damaged: the run starts over
        return False
    return same_config(state["config"], flags) and state["epoch"] < state["config"]["epochs"]


def train_run(flags: list[str], data_dir: str | None = None, evaluate: bool = False,
              run_dir: str | None = None) -> tuple[dict, bytes]:
    """One training run in a fresh `python train.py` process, one thread -> (its result dict, checkpoint bytes).
    With `evaluate`, the result also holds robustness.py's figures for the final weights (verdicts at
    verdict_below(flags)).

    Runs on a Ray worker, in the working directory Ray unpacked the project's code into. It trains into `run_dir`
    (the launching machine's runs/sweeps/GROUP/NAME, where this worker can write it: a local instance, or a
    cluster whose nodes share that folder), which keeps every finished epoch: a run that a Ctrl-C, a lost worker or
    a preempted machine stopped goes on from its last finished epoch when the sweep runs again. Elsewhere the
    folder is temporary and such a run starts over; what matters travels back either way.
    """
    import torch

    from model import Net, training_flops_per_image
    from threads import cpu_name

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(run_dir or tmp)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError:  # not this node's disk
            out = Path(tmp)
        if resumable(out, flags):
            cmd = [sys.executable, "train.py", "--resume", str(out)]
        else:
            cmd = [sys.executable, "train.py", *flags, "--out", str(out), "--force"]
            cmd += ["--data-dir", data_dir] if data_dir else []
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=_stop_with_parent)
        if proc.returncode:
            last = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise RunFailed(f"train.py {' '.join(flags)} exited with {proc.returncode}: {last}")
        run = json.loads(Path(out, "history.json").read_text())
        checkpoint = Path(out, "checkpoint.pt").read_bytes()
        if evaluate:  # the benchmarks the recipe is never chosen on, measured on the final weights
            from checkpoint import load_checkpoint
            from evidence import robustness

            torch.set_num_threads(1)
            model, payload = load_checkpoint(Path(out, "checkpoint.pt"))
            holdout = payload["config"].get("holdout", 0)
            run["robustness"] = robustness.evaluate(model, holdout, data_dir, verdict_below(flags))
    run.update(process_wall_seconds=round(time.perf_counter() - start, 1), cpu=cpu_name(), node=platform.node(),
               train_flops_per_image=training_flops_per_image(Net(run["model"])), threads=1,
               torch=torch.__version__, command=f"OMP_NUM_THREADS=1 python train.py {' '.join(flags)}")
    return run, checkpoint


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


def write_json(path: Path, data: dict) -> None:
    """A result file, written atomically."""
    from checkpoint import write_atomically

    write_atomically(path, (json.dumps(data, indent=1) + "\n").encode())


def run_sweep(group: str, runs: dict[str, list[str]], results: Path = RESULTS, address: str | None = None,
              workers: int | None = None, rerun: bool = False, data_dir: str | None = None) -> int:
    """Run what is not yet done of `runs` on Ray, writing results/<group>/<name>.json as each ends -> failures."""
    from tqdm.auto import tqdm

    from checkpoint import write_atomically

    folder = results / group
    todo = {n: f for n, f in runs.items() if rerun or not already_done(folder / f"{n}.json", f)}
    print(f"{group}: {len(runs)} runs, {len(runs) - len(todo)} already done, {len(todo)} to run", flush=True)
    if not todo:
        return 0
    ray = start_ray(address, workers)
    task = ray.remote(num_cpus=1, max_retries=0)(train_run)
    pending = {task.remote(flags, data_dir, group.startswith(EVALUATED), str(run_folders(results) / group / name)): name
               for name, flags in todo.items()}
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
                write_atomically(run_folders(results) / group / name / "checkpoint.pt", checkpoint)
                write_json(folder / f"{name}.json", run)
                h = run["history"]
                bar.write(f"{group}/{name}: final {h['test_acc'][-1]:.2f}% (last 3: {h['test_acc'][-3:]}) "
                          f"| training {run['wall_seconds']:.0f}s on {run['node']}")
                bar.set_postfix_str(f"last: {name} {h['test_acc'][-1]:.2f}%")
            bar.update()
    except KeyboardInterrupt:
        # Stop the runs in flight now: their workers are killed, which sends each train.py SIGTERM (it keeps its
        # last finished epoch in its folder); waiting for the cancellations lets that happen before Ray shuts down.
        for ref in pending:
            ray.cancel(ref, force=True)
        ray.wait(list(pending), num_returns=len(pending), timeout=30)
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
    runs = flag_set_runs(SCALE_RUNS)
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
    from threads import cpu_name

    result = {"runs": SCALE_RUNS, "cpu": cpu_name(), "cores": os.cpu_count(), "rounds": rounds, "by_workers": timings,
              "command": "python -m evidence.experiments scale"}
    write_json(RESULTS / "scale.json", result)
    return result


# --- the docs' tables, printed from results/ -----------------------------------------------------------------


def evaluate_group(group: str, results: Path = RESULTS, data_dir: str | None = None) -> int:
    """Add robustness.py's figures to each finished run of `group` that lacks them (its checkpoint is kept in
    runs/sweeps/), and recompute the validation figures of runs trained with a holdout -> how many were written.
    For runs that finished before their sweep was evaluated, or before a validation set existed."""
    import torch

    from checkpoint import load_checkpoint
    from evidence import robustness

    torch.set_num_threads(1)
    added = 0
    for path in sorted((results / group).glob("*.json")):
        run = json.loads(path.read_text())
        checkpoint = run_folders(results) / group / path.stem / "checkpoint.pt"
        holdout = run["config"].get("holdout", 0)
        if not checkpoint.is_file() or ("robustness" in run and not holdout):
            continue
        model, _ = load_checkpoint(checkpoint)
        below = verdict_below(run_flags(run))
        if "robustness" in run:  # the validation figures are cheap: recomputed, so a new validation set reaches it
            run["robustness"]["validation"] = robustness.validation(model, holdout, data_dir, below)
        else:
            run["robustness"] = robustness.evaluate(model, holdout, data_dir, below)
        write_json(path, run)
        print(f"{group}/{path.stem}: evaluated", flush=True)
        added += 1
    return added


EXAMPLES_EPOCHS = 2  # pytorch/examples mnist/main.py: Adadelta lr 1.0, StepLR gamma 0.7, batch 64, no augmentation


def examples_run(seed: int, data_dir: str | None = None) -> dict:
    """pytorch/examples' MNIST network trained with its own recipe, evaluated by robustness.py, one thread."""
    import torch
    import torch.nn.functional as F

    from datasets import load_data
    from evidence import robustness
    from evidence.bench import ExamplesNet
    from threads import cpu_name
    from util import set_seed, test

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
            "command": f"python -m evidence.experiments examples --seeds {seed}"}


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
        write_json(results / "examples" / f"seed{seed}.json", run)
        print(f"examples/seed{seed}: final {run['history']['test_acc'][-1]:.2f}%", flush=True)
    return 0



def main(argv: list[str] | None = None) -> int:
    """CLI: run a sweep (exit 1 if any run failed) or print/write the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", choices=(*SWEEPS, "flags", "examples", "evaluate", "report", "scale"))
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
            p.error("flags needs a name and at least one flag set: "
                    "python -m evidence.experiments flags NAME \"--epochs 3\" ...")
        group, flag_sets = a.flag_sets[0], a.flag_sets[1:]
    elif a.flag_sets:
        p.error(f"{a.sweep} takes no flag sets (they are for `flags`)")
    else:
        group, flag_sets = a.sweep, []
    seeds = tuple(a.seeds) if a.seeds else None
    runs = flag_set_runs(flag_sets, seeds) if a.sweep == "flags" else sweep_runs(a.sweep, seeds)
    for flags in runs.values():  # every flag set is checked here, before any task starts
        comparable_config(flags)
    failures = run_sweep(group, runs, a.results, a.address, a.workers, a.rerun, a.data_dir)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
