"""hubconf.py: torch.hub gives the shipped models, reading the test digits as committed, from any notebook."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import hubconf
from datasets import load_data
from model import count_parameters
from util import test as evaluate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


@pytest.mark.parametrize("entry, result", [("s6", "recipe"), ("s6_reject", "reject")])
def test_hub_entries_are_the_shipped_models_with_the_figures_their_help_names(entry, result, data_dir):
    model = torch.hub.load(str(ROOT), entry, source="local")
    run = json.loads((RESULTS / result / "seed0.json").read_text())  # seed 0 is what ships
    _, test_loader = load_data(128, data_dir, download=False)
    assert not model.training and next(model.parameters()).device.type == "cpu"
    assert evaluate(model, "cpu", test_loader).acc == pytest.approx(run["history"]["test_acc"][-1], abs=0.02)
    help_text = getattr(hubconf, entry).__doc__  # what torch.hub.help shows
    rob = run["robustness"]
    named = [f"{run['history']['test_acc'][-1]:.2f}%", "model.normalize", "(N, 1, 28, 28)"]
    if entry == "s6":
        named += [f"{rob['mnist_c']['mean']:.1f}%", f"{rob['mnist_c']['worst_acc']:.1f}%"]
    else:
        verdict = rob["not_a_digit"]
        named += [f"{verdict['non_digits_refused_mean']:.1f}%", f"{verdict['mnist_test_refused']:.2f}%"]
    assert all(figure in help_text for figure in named), (named, help_text)
    untrained = torch.hub.load(str(ROOT), entry, source="local", pretrained=False)
    assert count_parameters(untrained) == count_parameters(model) == run["parameters"]
    assert not torch.equal(next(untrained.parameters()), next(model.parameters()))


@pytest.mark.slow  # a fresh interpreter, as a notebook elsewhere would be
def test_hub_loads_past_a_notebooks_own_model_py_and_imports_no_app_export_or_sweeps(tmp_path):
    (tmp_path / "model.py").write_text("Net = 'a notebook of its own'\n")
    code = (f"import sys, model, torch; m = torch.hub.load({str(ROOT)!r}, 's6', source='local'); "
            "print(type(m).__name__, model.Net, sorted(n for n in ('gradio', 'ray', 'onnx', 'onnxruntime') "
            "if n in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[-2] == "Net a notebook of its own []"
