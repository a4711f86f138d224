"""The docs' tables, printed from results/: `python -m evidence.experiments report [--write]`.

Each `<!-- report: NAME -->` block in README.md and docs/*.md holds what TABLES[NAME] prints; tests/test_docs.py
keeps them equal. The five-seed groups a table shows are named once, in ROBUST_ROWS.
"""

from __future__ import annotations

import functools
import json
import re
import statistics
from pathlib import Path

from evidence.results import RESULTS, ROOT, each, final, load_group, mean_std, seed_summary
from evidence.speed_tables import (
    table_app,
    table_cluster,
    table_hardware,
    table_precision,
    table_quick,
    table_scale,
    table_speed,
    table_startup,
    table_target,
    table_threads,
)
from evidence.sweeps import (
    ABLATION,
    ABLATION_SEEDS,
    ANSWER_SIZES,
    NO_ROBUSTNESS_LEVERS,
    ROBUST_ABLATION,
    ROBUST_BASE,
)

# files that may hold generated tables: the README, the model card, the docs
DOCS = (ROOT / "README.md", ROOT / "checkpoints" / "README.md", *sorted((ROOT / "docs").glob("*.md")))

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
                         f"{each(finals)} | **{mean_std(finals)}** | {min(finals):.2f} | {last3:.2f} | {wall:.0f} |")
    return "\n".join(lines)


def table_small(results: Path = RESULTS) -> str:
    """The small sizes with the default recipe (results/small)."""
    lines = ["| size | parameters | epochs | final test acc, seeds 0-4 (%) | mean ± std | min | training and testing s "
             "(mean; one thread, two runs side by side) |", "|---|---|---|---|---|---|---|"]
    rows: dict[str, list[dict]] = {}
    for name, run in load_group("small", results).items():
        rows.setdefault(name.rsplit("-seed", 1)[0], []).append(run)
    for runs in rows.values():
        runs.sort(key=lambda r: r["config"]["seed"])
        finals = [final(r) for r in runs]
        epochs_s = statistics.mean(sum(r["history"]["seconds"]) for r in runs)
        size, epochs = runs[0]["model"], runs[0]["config"]["epochs"]
        lines.append(f"| {size} | {runs[0]['parameters']:,} | {epochs} | {each(finals)} | **{mean_std(finals)}** "
                     f"| {min(finals):.2f} | {epochs_s:.0f} |")
    return "\n".join(lines)


def _renderer_mark(report: dict) -> str:
    from evidence.userset import RENDERER

    return "" if report.get("renderer") == RENDERER else "†"


STALE_NOTE = ("† measured with the previous renderer of the handwriting sets (centre lines upsampled by Pillow, "
              "digits framed on whole pixels); the shipped checkpoint scores the same overall with both.")


def table_ablation(results: Path = RESULTS) -> str:
    ablation, robustness = load_group("ablation", results), load_group("robustness", results)
    seeds = ", ".join(map(str, ABLATION_SEEDS))
    lines = [f"| variant | epochs | EMA decay | weight decay | redrawn share | more flags | final test acc, seeds "
             f"{seeds} (%) | mean ± std | handwriting conditions, seeds {seeds}: mean % (worst %) |", "|---" * 9 + "|"]
    for name, flags in ABLATION.items():
        finals = [final(ablation[k]) for s in ABLATION_SEEDS if (k := f"{name}-seed{s}") in ablation]
        hand = ", ".join(f"{r['overall_accuracy']:.2f} ({r['worst']:.1f}){_renderer_mark(r)}" for s in ABLATION_SEEDS
                         if (r := robustness.get(f"{name}-seed{s}")))
        if finals:
            epochs, ema, wd, redraw = flags[1:8:2]  # recipe() spells these four first
            more = " ".join(flags[8:]).replace(" ".join(NO_ROBUSTNESS_LEVERS), "").strip()
            lines.append(f"| {name} | {epochs} | {ema} | {wd} | {redraw} | {f'`{more}`' if more else ''} | "
                         f"{each(finals)} | {mean_std(finals)} | {hand or '-'} |")
    lines.append(f"\nEvery row also has `{' '.join(NO_ROBUSTNESS_LEVERS)}`: the recipe before the robustness levers "
                 f"(docs/robustness.md has their ablation).")
    if any(_renderer_mark(r) for r in robustness.values()):
        lines.append(f"\n{STALE_NOTE}")
    return "\n".join(lines)


def table_handwriting(results: Path = RESULTS) -> str:
    """Handwriting conditions: the seed-faithful recipe (the mean of its seeds), then seeds 0-4 of the default
    recipe (seed 0 answers in the shipped pair), as robustness.py measured them for experiments.py."""
    def hands(group):
        return [_robust(r)["handwriting"] for r in load_group(group, results).values() if "robustness" in r]

    default = {f"default seed {r['config']['seed']}": _robust(r)["handwriting"]
               for r in load_group("recipe", results).values() if "robustness" in r}
    if not default:
        return "(no results yet: `python -m evidence.experiments recipe`)"
    columns = {f"seed-faithful, mean of {len(h)}": h for h in [hands("faithful")] if h}
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


ROBUST_ROWS = {  # table row -> results group (five seeds each, unless the files say otherwise)
    "default recipe": "recipe",
    "rejection model (`evidence.sweeps.REJECT`; its verdict is shipped, its answers are not)": "reject",
    "60k rejection model, 12 epochs (without `--not-digit-curves 0.5 --epochs 18`)": "reject-60k",
    "15k rejection model (the 60k one without `--model 60k`)": "reject-15k",
    "15k rejection model without printed digits (without `--digit-printed`)": "reject-previous",
    "15k rejection model without printed digits or low-resolution images (`--low-res 0`)": "reject-no-low-res",
    "seed-faithful recipe (`--stroke-prob 0`, no robustness levers)": "faithful",
    "pytorch/examples network (1.2M parameters, 2 epochs)": "examples",
}


def five_seed_groups(results: Path, key: str = "") -> dict[str, list[dict]]:
    """ROBUST_ROWS' row -> the robustness figures (or their `key` part) of the group's evaluated runs."""
    groups = {row: [_robust(r)[key] if key else _robust(r) for r in load_group(group, results).values()
                    if "robustness" in r and (not key or key in _robust(r))] for row, group in ROBUST_ROWS.items()}
    return {row: figures for row, figures in groups.items() if figures}


def _robust(run: dict) -> dict:
    return run.get("robustness", {})


def _below(not_a_digit: list[dict]) -> str:
    """The verdict threshold the not-a-digit figures were measured at, when it is not the models' own (0.5)."""
    from checkpoint import OWN_REJECT_BELOW

    belows = {n["reject_below"] for n in not_a_digit}
    return "" if belows == {OWN_REJECT_BELOW} else f" (under {', '.join(map(str, sorted(belows)))})"


def _mean(values) -> str:
    values = list(values)
    return mean_std(values) if values else "-"


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
        answers = f"{_mean(x['mnist_c']['mean'] for x in rob)} | {worst} | {hand}"
        if group.startswith("reject"):  # a rejection model's answers are never shown: only its verdict counts
            answers = "- | - | -"
        lines.append(f"| {row} | {', '.join(str(r.get('config', r).get('seed')) for r in runs)} | "
                     f"{each([final(r) for r in runs])} ({_mean(final(r) for r in runs)}) | {answers} | "
                     f"{_mean(x['not_a_digit']['non_digits_refused_mean'] for x in rob)}"
                     f"{_below([x['not_a_digit'] for x in rob])} | "
                     f"{_mean(x['not_a_digit']['mnist_test_refused'] for x in rob)} |")
    return "\n".join(lines)


def table_recipe(results: Path = RESULTS) -> str:
    """The README's view: the default recipe seed by seed, with the verdict of the rejection model of the same seed."""
    recipe = {r["config"]["seed"]: r for r in load_group("recipe", results).values() if "robustness" in r}
    reject = {r["config"]["seed"]: r for r in load_group("reject", results).values() if "robustness" in r}
    if not recipe or not reject:
        return "(no results yet: `python -m evidence.experiments recipe` and `reject`)"
    lines = ["| seed | clean test acc (%) | MNIST-C mean / worst (%) | with its rejection model: not-a-digit set "
             "refused (%) | test digits refused (%) |", "|---|---|---|---|---|"]

    def corrupted(run):
        return _robust(run)["mnist_c"]["mean"], _robust(run)["mnist_c"]["worst_acc"]

    for seed in sorted(recipe):
        (cm, cw), nd = corrupted(recipe[seed]), _robust(reject[seed])["not_a_digit"] if seed in reject else None
        verdict = f"{nd['non_digits_refused_mean']:.1f} | {nd['mnist_test_refused']:.2f}" if nd else "- | -"
        lines.append(f"| {seed} | {final(recipe[seed]):.2f} | {cm:.1f} / {cw:.1f} | {verdict} |")
    rc, nds = [corrupted(r) for r in recipe.values()], [_robust(r)["not_a_digit"] for r in reject.values()]
    lines.append(f"| **mean** | **{mean_std([final(r) for r in recipe.values()])}** | "
                 f"{statistics.mean(m for m, _ in rc):.1f} / {min(w for _, w in rc):.1f} (min) | "
                 f"{statistics.mean(n['non_digits_refused_mean'] for n in nds):.1f} | "
                 f"{statistics.mean(n['mnist_test_refused'] for n in nds):.2f} |")
    return "\n".join(lines)


def table_mnist_c(results: Path = RESULTS) -> str:
    from evidence.mnist_c import CORRUPTIONS

    groups = {row: v for row, v in five_seed_groups(results, "mnist_c").items()
              if "rejection model" not in row}  # the answering recipes: the rejection models' answers are not shown
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
    groups = {"reject-60k": "60k rejection model, 12 epochs, no smooth scribbles", "reject-15k": "15k rejection model",
              "reject-previous": "15k rejection model without printed digits", "recipe": "default alone"}
    runs = [r for r in load_group("reject", results).values() if "robustness" in r]
    if not runs:
        return "(no results yet: `python -m evidence.experiments reject`)"
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
    columns = {k: v for k, v in columns.items() if k in first["0.5"]}  # what the group's command measured
    lines = ["| threshold | " + " | ".join(columns.values()) + " |", "|---" * (len(columns) + 1) + "|"]
    for t in first:
        if t != "command":
            lines.append(f"| {t} | " + " | ".join(each([r[t][k] for r in runs.values()]) for k in columns) + " |")
    return "\n".join(lines)


def table_printed(results: Path = RESULTS) -> str:
    variants = ("printed", "low-res scan", "pen-redrawn")
    lines = ["| model | " + " | ".join(f"{v}: all (held-out faces)" for v in variants) + " |", "|---|---|---|---|"]
    pairs = json.loads((results / "pairs.json").read_text())["pairs"].values()  # answers and verdicts of one seed
    rows = {"default + rejection model (the shipped pair)": [p["printed_digits"] for p in pairs],
            **five_seed_groups(results, "printed_digits")}
    for row, runs in rows.items():
        lines.append(f"| {row.split(' (')[0]} | " + " | ".join(
            f"{statistics.mean(p[v]['all'] for p in runs):.1f} "
            f"({statistics.mean(p[v]['faces_odd_held_out'] for p in runs):.1f})" for v in variants) + " |")
    note = "\nMean over each row's seeds; a digit answered \"not a digit / not sure\" counts as wrong."
    return "\n".join([*lines, note])


def table_variants(results: Path = RESULTS) -> str:
    """robustness.py --variants: each hand-drawn shape read by the default recipe alone, and with the verdict of the
    rejection model of the same seed (the shipped pair); seeds 0-4."""
    alone = json.loads((results / "variants.json").read_text())
    pairs = json.loads((results / "pairs.json").read_text())
    groups = {"default alone": [m for m in alone["models"].values() if not m["config"]["not_digits"]],
              "default + rejection model": [{**m["variant_digits"], "config": m["config"]}
                                            for m in pairs["pairs"].values()]}
    kinds = ("drawn", "low-res scan")
    head = " | ".join(f"{g}: {k}" for g in groups for k in kinds)
    lines = [f"| shape | {head} |", "|---" * (1 + 2 * len(groups)) + "|"]
    for shape in groups["default alone"][0]["drawn"]:
        cells = [f"{statistics.mean(m[k][shape]['all'] for m in ms):.0f} "
                 f"({statistics.mean(m[k][shape]['draws_odd_held_out'] for m in ms):.0f})"
                 for ms in groups.values() for k in kinds]
        lines.append(f"| {shape} | " + " | ".join(cells) + " |")
    seeds = "; ".join(f"{g}: seeds {', '.join(str(m['config']['seed']) for m in ms)}" for g, ms in groups.items())
    return "\n".join([*lines, f"\n% read right and not refused, mean over the seeds ({seeds}; in parentheses the "
                                "held-out half of the hands); `results/variants.json`, `results/pairs.json` (each "
                                "holds its `python -m evidence.robustness` command)."])


def table_robust_ablation(results: Path = RESULTS) -> str:
    runs = load_group("robust-ablation", results)
    lines = ["| variant (after ROBUST_BASE, `--holdout 5000`) | seeds | validation clean (%) | validation "
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


def table_card(results: Path = RESULTS) -> str:
    """The model card's figures: the shipped pair (seed 0) beside the same recipes' five seeds, with commands."""
    answer = {r["config"]["seed"]: r for r in load_group("recipe", results).values() if "robustness" in r}
    verdict = {r["config"]["seed"]: r for r in load_group("reject", results).values() if "robustness" in r}
    pairs = {p["config"]["seed"]: p for p in json.loads((results / "pairs.json").read_text())["pairs"].values()}
    photos = json.loads((results / "userset.json").read_text())

    def shapes(pair: dict, kind: str) -> float:
        return statistics.mean(v["all"] for v in pair["variant_digits"][kind].values())

    rows = [  # figure, value of one seed's run, its format, the command
        ("clean MNIST test digits read right", lambda s: final(answer[s]), ".2f", "recipe"),
        ("MNIST-C, mean of the 15 corruptions", lambda s: _robust(answer[s])["mnist_c"]["mean"], ".1f", "recipe"),
        ("MNIST-C, worst corruption", lambda s: _robust(answer[s])["mnist_c"]["worst_acc"], ".1f", "recipe"),
        ("handwriting conditions, overall", lambda s: _robust(answer[s])["handwriting"]["overall"], ".2f", "recipe"),
        ("handwriting conditions, worst (the thick marker)", lambda s: _robust(answer[s])["handwriting"]["worst"],
         ".1f", "recipe"),
        ("not-a-digit set refused", lambda s: _robust(verdict[s])["not_a_digit"]["non_digits_refused_mean"], ".1f",
         "reject"),
        ("MNIST test digits refused", lambda s: _robust(verdict[s])["not_a_digit"]["mnist_test_refused"], ".2f",
         "reject"),
        ("printed digits scanned small, read and accepted", lambda s: pairs[s]["printed_digits"]["low-res scan"]["all"],
         ".1f", "pairs"),
        ("hand-drawn shapes MNIST's writers rarely made, read and accepted", lambda s: shapes(pairs[s], "drawn"),
         ".1f", "pairs"),
        ("the same shapes scanned small", lambda s: shapes(pairs[s], "low-res scan"), ".1f", "pairs"),
    ]
    commands = {"recipe": "`python -m evidence.experiments recipe`",
                "reject": "`python -m evidence.experiments reject`",
                "pairs": "`results/pairs.json` (its command: `python -m evidence.robustness --checkpoint ... "
                         "--rejector ...`)"}
    lines = ["| figure (%) | shipped pair (seed 0) | seeds 0-4, each | mean ± std | command |", "|---|---|---|---|---|"]
    for name, value, fmt, source in rows:
        values = [value(s) for s in sorted(answer)]
        lines.append(f"| {name} | **{value(0):{fmt}}** | {', '.join(f'{v:{fmt}}' for v in values)} | "
                     f"{statistics.mean(values):{fmt}} ± {statistics.stdev(values):{fmt}} | {commands[source]} |")
    lines.append(f"| photo set read right / refused | **{photos['accuracy']:.1f} / {photos['refused']:.1f}** | - | - "
                 f"| `{photos['command']}` |")
    return "\n".join(lines)


def table_not_adopted(results: Path = RESULTS) -> str:
    """The levers screened and not adopted, one row each (results/not-adopted.json): what each bought and cost on
    its screening sets, and the commit whose results/ and code hold its runs."""
    rows = json.loads((results / "not-adopted.json").read_text())
    lines = ["| lever | model, screened on | bought | cost | at commit |", "|---|---|---|---|---|"]
    for r in rows["levers"]:
        lines.append(f"| {r['lever']} | {r['model']}, {r['screened_on']} | {r['bought']} | {r['cost']} | "
                     f"`{r['commit']}` `{r['results']}` |")
    return "\n".join([*lines, "", rows["note"]])


# robustness.py --thresholds tables: the answering model's own verdict, and the shipped rejection model's
THRESHOLD_GROUPS = ("threshold", "threshold-reject-60k-curves-e18")
TABLES = {"sizes": table_sizes, "small": table_small, "ablation": table_ablation,
          "handwriting": table_handwriting, "photos": table_photos, "hardware": table_hardware,
          "speed": table_speed, "target": table_target, "quick": table_quick, "threads": table_threads,
          "startup": table_startup, "app": table_app,
          "scale": table_scale, "cluster": table_cluster, "precision": table_precision,
          "robustness": table_robustness, "recipe": table_recipe, "mnist_c": table_mnist_c,
          "not_a_digit": table_not_a_digit, "printed": table_printed, "variants": table_variants,
          "robust_ablation": table_robust_ablation, "not_adopted": table_not_adopted, "card": table_card,
          **{group.replace("-", "_"): functools.partial(table_threshold, group=group) for group in THRESHOLD_GROUPS}}


BLOCK = re.compile(r"<!-- report: (\w+) -->\n(?:(?:(?!<!--).)*\n)?<!-- /report -->", re.S)


def render_docs(text: str, results: Path = RESULTS) -> str:
    """`text` with every `<!-- report: NAME -->` block replaced by the table printed from `results`."""
    return BLOCK.sub(lambda m: f"<!-- report: {m.group(1)} -->\n{TABLES[m.group(1)](results)}\n<!-- /report -->", text)
