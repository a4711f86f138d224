# Two commands on a fresh machine: `make train` and `make test`. Both create .venv on first use.
# MNIST is read from $MNIST_DATA_DIR (a folder holding MNIST/raw/), else ./data, downloaded on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: train test demo export bench notebook clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

train: $(VENV)/.installed  ## train the default recipe into a fresh runs/15k-seed0*/ (ARGS="--model 8k --seed 1")
	$(PY) train.py $(ARGS)

test: $(VENV)/.installed  ## lint, then the whole test suite on the real MNIST files (browser test: needs chromium)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

demo: $(VENV)/.installed  ## the drawing app on http://127.0.0.1:7860 (offline; ARGS="--port 8000 --checkpoint PATH")
	GRADIO_ANALYTICS_ENABLED=False $(PY) app.py $(ARGS)

export: $(VENV)/.installed  ## checkpoints/s6.pt -> s6.onnx, checked with onnxruntime on the MNIST test set
	$(PY) export.py $(ARGS)

bench: $(VENV)/.installed  ## speed benchmark -> results/bench.json
	$(PY) bench.py $(ARGS)

notebook: $(VENV)/.installed  ## re-run S6.ipynb in place with the full recipe (what is committed)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1800 S6.ipynb

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache __pycache__ tests/__pycache__
