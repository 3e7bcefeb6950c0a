# Set-up and entry points. `make repro` runs the pipeline on the defaults; `make test` runs the tests.
# Both create the virtual environment .venv from requirements.txt first if it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv repro test

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

repro: venv
	dvc repro

test: venv
	python -m pytest -q tests
