# Two commands do everything: `make run` (the app on the bundled demo) and
# `make test` (lint + import contracts + tests). Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the gpu extra (CUDA 13 + cuDNN 9 wheels for ONNX Runtime) only where nvidia-smi lists a GPU
GPU_EXTRA := $(shell nvidia-smi -L 2>/dev/null | grep -q '^GPU ' && echo ,gpu)

.PHONY: run test lint venv qt-check demo-data demo-bundle shortcut-experiment bench bench-scale clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test$(GPU_EXTRA)]'
	@touch $(STAMP)

venv: $(STAMP)

# Qt needs system libraries that a minimal Debian may lack. The check starts Qt on the platform
# the app will use (xcb with DISPLAY, wayland under Wayland, offscreen without a display) and
# prints the apt-get line that fixes it (desktop/qt_check.py; the launcher says the same).
qt-check: $(STAMP)
	@$(PY) -m desktop.qt_check

run: $(STAMP) qt-check
	$(VENV)/bin/cxr-review --demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# the tests run without a display: the check is for the platform they use
test: $(STAMP) lint
	@$(PY) -m desktop.qt_check --platform offscreen
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# Regenerate the demo images committed under resources/demo/images (24 phantoms, 8- and 16-bit).
demo-data: $(STAMP)
	rm -rf resources/demo/images
	$(VENV)/bin/cxr phantoms resources/demo/images/16-bit --n 12 --size 512 --bit-depth 16 \
	  --seed 2026 --flat --no-masks
	$(VENV)/bin/cxr phantoms resources/demo/images/8-bit --n 12 --size 512 --bit-depth 8 \
	  --seed 2027 --flat --no-masks

# Retrain the demo bundle (compact CNN on 1,500 phantoms; about 10 minutes on 2 cores).
demo-bundle: $(STAMP)
	rm -rf build/demo-phantoms build/demo-run
	$(VENV)/bin/cxr phantoms build/demo-phantoms --n 1500 --size 256 --bit-depth 16 --seed 7
	$(VENV)/bin/cxr train build/demo-phantoms --out build/demo-run --backbone compact \
	  --weights none --image-size 128 --epochs 25 --batch-size 32 --lr 1e-3 --seed 7 \
	  --demo --model-name "cxr-review demo (compact CNN, synthetic phantoms)"
	rm -rf resources/demo/bundle
	cp -r build/demo-run/bundle resources/demo/bundle

# The shortcut experiment: a model trained where burned-in markers give the class away vs a clean
# one, both audited on phantoms whose markers say nothing (about 7 minutes on 2 cores).
shortcut-experiment: $(STAMP)
	rm -rf build/shortcut-experiment build/shortcut-experiment.json
	$(PY) -m training.shortcut_experiment --out build/shortcut-experiment \
	  --json build/shortcut-experiment.json

# Speed and memory against the bars in benchmarks/__main__.py (JSON in build/; under 10 minutes here).
bench: $(STAMP)
	@mkdir -p build
	QT_QPA_PLATFORM=offscreen $(PY) -m benchmarks --quick --json build/bench.json

# The same plus the 20,000-image training-memory run (about half an hour more).
bench-scale: $(STAMP)
	@mkdir -p build
	QT_QPA_PLATFORM=offscreen $(PY) -m benchmarks --quick --scale --json build/bench-scale.json

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .import_linter_cache
