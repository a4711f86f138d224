# Two commands on a fresh machine: `make train` and `make test`. Both create .venv on first use.
# MNIST is read from $MNIST_DATA_DIR (a folder holding MNIST/raw/), else ./data, downloaded on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: train test lint bench notebook clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

train: $(VENV)/.installed  ## train the default recipe, writing runs/seed0/
	$(PY) train.py $(ARGS)

test: $(VENV)/.installed  ## lint, then the whole test suite on the real MNIST files
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: $(VENV)/.installed  ## speed benchmark -> results/bench.json
	$(PY) bench.py $(ARGS)

notebook: $(VENV)/.installed  ## re-run S6.ipynb in place with the full recipe (what is committed)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1800 S6.ipynb

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache __pycache__ tests/__pycache__
