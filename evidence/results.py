"""Reading results/: a group's run files, and the figures every table prints of them."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def load_group(group: str, results: Path = RESULTS) -> dict[str, dict]:
    """results/<group>/*.json by name."""
    return {f.stem: json.loads(f.read_text()) for f in sorted((results / group).glob("*.json"))}


def mean_std(accs: list[float]) -> str:
    """"mean ± std" of accuracies (%), or the one value."""
    return f"{statistics.mean(accs):.2f} ± {statistics.stdev(accs):.2f}" if len(accs) > 1 else f"{accs[0]:.2f}"


def each(accs: list[float]) -> str:
    """Accuracies (%) listed, two decimals."""
    return ", ".join(f"{a:.2f}" for a in accs)


def final(run: dict) -> float:
    """A run's final-epoch test accuracy (%)."""
    return run["history"]["test_acc"][-1]


def seed_summary(runs: list[dict]) -> tuple[list[float], float, float]:
    """Runs of one recipe over seeds -> (final accuracies, lowest of any last three epochs, mean training s)."""
    finals = [final(r) for r in runs]
    last3 = min(min(r["history"]["test_acc"][-3:]) for r in runs)
    return finals, last3, statistics.mean(r["wall_seconds"] for r in runs)
