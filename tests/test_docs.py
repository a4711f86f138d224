"""The docs cannot drift from the evidence: every generated table equals what `experiments.py report` prints."""

import re

import pytest

from experiments import BLOCK, DOCS, TABLES, render_docs


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_committed_tables_equal_the_report(doc):
    text = doc.read_text()
    assert render_docs(text) == text, f"{doc.name} differs from the results: run `make report` and commit"


def test_every_table_is_shown_somewhere_and_names_are_known():
    shown = [m.group(1) for doc in DOCS for m in BLOCK.finditer(doc.read_text())]
    assert set(shown) == set(TABLES)


def test_readme_is_a_newcomers_page():
    text = DOCS[0].read_text()
    assert DOCS[0].name == "README.md" and len(text) <= 8000, len(text)
    assert not re.search(r"[Ii]ssue \d", text)
    for doc in DOCS:
        assert not re.search(r"[Ii]ssue #?\d", doc.read_text()), doc.name


def test_committed_results_count_as_done_so_a_sweep_reruns_nothing():
    from experiments import RESULTS, SEED_SWEEPS, already_done, sweep_runs

    for sweep in ("sizes", "frontier", "ablation"):
        runs = sweep_runs(sweep)
        missing = [name for name, flags in runs.items() if not already_done(RESULTS / sweep / f"{name}.json", flags)]
        assert not missing, f"{sweep}: {missing[:3]}"
    # A named sweep's committed runs are what its flags give today: a moved default must not change a row's meaning.
    for sweep in (*SEED_SWEEPS, "robust-ablation"):
        runs = sweep_runs(sweep)
        committed = sorted((RESULTS / sweep).glob("*.json"))
        assert committed, sweep
        stale = [f.stem for f in committed if f.stem not in runs or not already_done(f, runs[f.stem])]
        assert not stale, f"{sweep}: {stale[:3]}"
