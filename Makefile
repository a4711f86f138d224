# `make train` and `make test` are all a newcomer needs; each creates .venv on first use.
# MNIST is read from $MNIST_DATA_DIR (a folder holding MNIST/raw/), else ./data, downloaded on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help try train quick test test-fast gpu-check demo export bench experiments report notebook notebook-refresh clean clean-runs

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/' | expand -t 14

$(VENV)/.installed: requirements.txt  ## training and the notebook only
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt requirements-ray.txt  ## + app, export, Ray, tests
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt  # it includes requirements.txt: one resolution, not two
	touch $(VENV)/.installed $@

try: $(VENV)/.installed  ## a quick run: 2 epochs on 10,000 images into a fresh runs/15k-seed0*/
	$(PY) train.py --epochs 2 --subset 10000 $(ARGS)

train: $(VENV)/.installed  ## the default recipe into a fresh runs/15k-seed0*/ (ARGS="--model 8k --seed 1")
	$(PY) train.py $(ARGS)

quick: $(VENV)/.installed  ## the quick recipe, 99.4% soonest on a laptop CPU: train.py --preset quick (ARGS as for train)
	$(PY) train.py --preset quick $(ARGS)

test: $(VENV)/.installed-dev  ## lint, then every test on the real MNIST files (the browser test needs chromium)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

test-fast: $(VENV)/.installed-dev  ## the tests without the slow tier (browser, notebook, ONNX, Ray): about a minute
	$(PY) -m pytest -q -m "not slow"

gpu-check: $(VENV)/.installed-dev  ## on a CUDA machine: the cuda tests, a fixed seed, waits per step, the recipe timed -> results/gpu.json
	$(PY) -m evidence.gpu_check

demo: $(VENV)/.installed-dev  ## the drawing app on http://127.0.0.1:7860 (offline; ARGS="--port 8000 --checkpoint PATH")
	GRADIO_ANALYTICS_ENABLED=False $(PY) app.py $(ARGS)

export: $(VENV)/.installed-dev  ## checkpoints/s6.pt -> s6.onnx, checked with onnxruntime on the MNIST test set
	$(PY) export.py $(ARGS)

bench: $(VENV)/.installed-dev  ## speed benchmark -> results/bench.json
	$(PY) -m evidence.bench $(ARGS)

experiments: $(VENV)/.installed-dev  ## a sweep on Ray, resumable (ARGS="sizes", "quick", "small", "sizes --address auto")
	$(PY) -m evidence.experiments $(or $(ARGS),sizes)

report: $(VENV)/.installed-dev  ## rewrite the tables in README.md and docs/ from results/
	$(PY) -m evidence.experiments report --write

notebook: $(VENV)/.installed  ## run S6.ipynb with the full recipe into runs/S6.ipynb (the committed one is untouched)
	mkdir -p runs
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --output-dir runs --ExecutePreprocessor.timeout=1800 S6.ipynb

notebook-refresh: notebook  ## then replace the committed S6.ipynb by that run (its outputs are what is committed)
	cp runs/S6.ipynb S6.ipynb

clean:  ## remove the venv and caches (runs/ with your trained checkpoints is kept: see clean-runs)
	rm -rf $(VENV) .pytest_cache .ruff_cache __pycache__ */__pycache__
	@[ ! -d runs ] || echo "kept runs/ ($$(ls runs | wc -l) entries): \`make clean-runs\` deletes it"

clean-runs:  ## delete runs/: every checkpoint you trained
	@[ ! -d runs ] || (ls runs && rm -rf runs && echo "deleted runs/")
