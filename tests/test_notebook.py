"""S6.ipynb runs from a fresh kernel cell by cell, shows its loop, and matches train.py's history."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # starts a kernel and trains twice

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "S6.ipynb"
SMALL = {"S6_EPOCHS": "2", "S6_SUBSET": "2000", "OMP_NUM_THREADS": "1"}


def test_notebook_runs_end_to_end_and_matches_train_py(data_dir, monkeypatch, tmp_path):
    before = NOTEBOOK.read_bytes()
    for key, value in {**SMALL, "MNIST_DATA_DIR": str(data_dir),
                       "MPLBACKEND": "module://matplotlib_inline.backend_inline"}.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "for epoch in range(" in source and "train(model, device, train_loader, optimizer" in source
    assert "test(tested, device, test_loader)" in source and "plot_acc_loss(" in source
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json; print('HISTORY', json.dumps([train_losses, train_acc, test_losses, test_acc]))"))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert "epoch  2 | train loss" in text and "final-epoch test accuracy" in text
    assert "Total params: 15,248" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 4  # samples, curves, confusion, errors
    assert NOTEBOOK.read_bytes() == before
    notebook_history = json.loads(text.split("HISTORY ", 1)[1].splitlines()[0])

    env = {**os.environ, **SMALL}
    subprocess.run([sys.executable, "train.py", "--epochs", "2", "--subset", "2000", "--out", str(tmp_path)],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    h = json.loads((tmp_path / "history.json").read_text())["history"]
    assert notebook_history == [h["train_loss"], h["train_acc"], h["test_loss"], h["test_acc"]]


def test_committed_notebook_holds_a_full_run_and_no_local_paths():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "epoch 15 | train loss" in text and "final-epoch test accuracy" in text
    assert str(ROOT) not in text and "/shared/data" not in text and "train: " not in text
