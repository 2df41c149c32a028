# The two set-up commands of the README. Both create .venv on a fresh machine; `quickstart`
# installs what running needs, `test` adds the test tools (pytest, ruff, mypy, moto, ...).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: quickstart test

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

quickstart: $(VENV)/.installed
	$(BIN)/sgdthermo run configs/quickstart.toml --out quickstart.zarr --overwrite
	$(BIN)/sgdthermo report quickstart.zarr -o quickstart.html

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4 --durations=20
