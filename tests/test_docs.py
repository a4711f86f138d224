"""The docs cannot drift from the evidence: every generated table equals what the report command prints."""

import json
import re

import pytest

from config import TrainConfig
from evidence.report import BLOCK, DOCS, RESULTS, TABLES, render_docs
from evidence.sweeps import SWEEPS, already_done, sweep_runs


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_committed_tables_equal_the_report(doc):
    text = doc.read_text()
    assert render_docs(text) == text, f"{doc.name} differs from the results: run `make report` and commit"


def test_every_table_is_shown_somewhere_and_names_are_known():
    shown = [m.group(1) for doc in DOCS for m in BLOCK.finditer(doc.read_text())]
    assert set(shown) == set(TABLES)


def test_readme_is_a_newcomers_page_and_the_docs_are_read_to_the_end():
    text = DOCS[0].read_text()
    assert DOCS[0].name == "README.md" and len(text) <= 8000, len(text)
    sizes = {doc.name: len(doc.read_text()) for doc in DOCS if doc.parent.name == "docs"}
    assert sizes["robustness.md"] <= 25_000 and sum(sizes.values()) <= 60_000, sizes
    assert not re.search(r"[Ii]ssue \d", text)
    for doc in DOCS:
        assert not re.search(r"[Ii]ssue #?\d", doc.read_text()), doc.name


def test_committed_results_count_as_done_so_a_sweep_reruns_nothing():
    # Every committed run of a declared sweep is what its row's flags give today: a moved default must not make a
    # result look stale, nor a row change its meaning.
    for sweep in SWEEPS:
        runs = sweep_runs(sweep)
        committed = sorted((RESULTS / sweep).glob("*.json"))
        assert committed, sweep
        stale = [f.stem for f in committed if f.stem not in runs or not already_done(f, runs[f.stem])]
        assert not stale, f"{sweep}: {stale[:3]}"
    recorded = json.loads((RESULTS / "recipe" / "seed0.json").read_text())["config"]
    assert list(recorded) == list(TrainConfig().to_dict())  # every result file holds today's fields
    for sweep in ("sizes", "ablation"):  # complete: nothing left to run
        assert all((RESULTS / sweep / f"{name}.json").is_file() for name in sweep_runs(sweep)), sweep
