from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parent.parent / "S6.ipynb"


def test_notebook_runs_end_to_end_without_being_modified(data_dir, monkeypatch):
    before = NOTEBOOK.read_bytes()
    monkeypatch.setenv("MNIST_DATA_DIR", str(data_dir))
    monkeypatch.setenv("S6_EPOCHS", "1")
    monkeypatch.setenv("S6_SUBSET", "2000")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    where = {"metadata": {"path": str(NOTEBOOK.parent)}}
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources=where)
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert "epoch  1 | train loss" in text
    assert "final-epoch test accuracy" in text
    assert "Total params: 15,248" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 4  # samples, curves, confusion, errors
    assert NOTEBOOK.read_bytes() == before
