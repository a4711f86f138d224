"""The speed and scale tables of docs/speed.md, docs/results.md and docs/experiments.md, printed from results/."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from evidence.results import RESULTS, each, load_group, mean_std, seed_summary
from evidence.sweeps import SWEEPS


def table_hardware(results: Path = RESULTS) -> str:
    """Where each group of training runs was measured (from the result files themselves)."""
    def machine(r):  # pytorch/examples' runs record no torch version or side-by-side count
        return r["cpu"], r.get("torch", "-"), r.get("threads", 1), r.get("runs_side_by_side", "-")

    lines = ["| results | runs | CPU | torch | threads per run | runs side by side | training per run (s, median) |",
             "|---|---|---|---|---|---|---|"]
    for group in (*SWEEPS, "precision", "examples"):
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


def table_target(results: Path = RESULTS) -> str:
    """From a fresh process to 99.4% test accuracy: the course's loop, the quick and the default recipe (bench.py,
    target part), alternated on one machine."""
    t = _bench(results).get("target")
    if t is None:
        return "(not measured yet: `python -m evidence.bench --only target`)"
    m = t["machine"]
    names = {"course": "the course's loop (PIL transforms, DataLoader with 2 workers, SGD 0.01 + StepLR)",
             "quick": "quick recipe (`make quick`)", "default": "default recipe (`make train`)"}
    lines = [f"Measured on {m['processor']}, {m['cpus']} cores, torch {m['torch']}, {m['precision_auto']} under "
             f"`--precision auto`; {t['rounds']} alternated rounds, each run a fresh process with the default threads "
             f"(seconds from its start).", "",
             f"| training | epochs run | first epoch at {t['target']}% | seconds to it | final test acc (%) "
             "| seconds to the end |", "|---|---|---|---|---|---|"]
    for name, runs in t["runs"].items():
        cells = [", ".join("-" if r[key] is None else str(r[key]) for r in runs)
                 for key in ("epochs_run", "first_epoch_at_target", "seconds_to_target")]
        finals = ", ".join(f"{r['test_acc'][-1]:.2f}" for r in runs)
        ends = ", ".join(str(r["seconds_to_end"]) for r in runs)
        lines.append(f"| {names[name]} | {' | '.join(cells)} | {finals} | {ends} |")
    lines.append(f"\nThe quick recipe's last epoch against the course's first at {t['target']}% (medians): "
                 f"**{t['course_over_quick']:.1f}×** sooner.")
    p = t["profile"]
    quick = t["runs"]["quick"][0]["seconds"]
    epoch = statistics.median(b - a for a, b in zip(quick, quick[1:]))
    parts = {part: ms * p["steps_per_epoch"] / 1e3 for part, ms in p["ms_per_step"].items()}
    parts["the test pass"] = p["test_pass_s"]
    parts["the rest (util.train's own work per step, saving, what 100 timed steps miss)"] = epoch - sum(parts.values())
    shares = ", ".join(f"{part} {100 * s / epoch:.0f}%" for part, s in parts.items())
    lines.append(f"\nWhere a quick epoch goes ({p['steps_per_epoch']} steps, {epoch:.1f} s in the first run above; "
                 f"{p['threads']} threads, {p['precision']}; `--stage profile` times 100 steps part by part): "
                 f"{shares}.")
    return "\n".join(lines)


def table_quick(results: Path = RESULTS) -> str:
    """The quick recipe's final epoch, seed by seed: as it runs here, on a second seed set, and in float32."""
    lines = ["| runs | precision | seeds | final test acc (%) | mean ± std | min | training s per run (mean) |",
             "|---|---|---|---|---|---|---|"]
    for group, row, label in (("quick", "", "`make quick`"), ("quick-more-seeds", "", "`make quick`, other seeds"),
                              ("quick", "float32", "`make quick ARGS=\"--precision float32\"`")):
        prefix = f"{row}-seed" if row else "seed"
        runs = [r for name, r in load_group(group, results).items() if name.startswith(prefix)]
        if runs:
            runs.sort(key=lambda r: r["config"]["seed"])
            finals, _, wall = seed_summary(runs)
            seeds = ", ".join(str(r["config"]["seed"]) for r in runs)
            lines.append(f"| {label} | {runs[0]['precision']} | {seeds} | {each(finals)} | **{mean_std(finals)}** "
                         f"| {min(finals):.2f} | {wall:.0f} |")
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
            lines.append(f"| {precision} | {each(finals)} | **{mean_std(finals)}** | {last3:.2f} | {wall:.0f} | "
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
    groups = {g: list(load_group(g, results).values()) for g in ("sizes", "ablation")}
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
