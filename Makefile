# lucent_ws — `make run` and `make test` work on a fresh machine (they create .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-all lint typecheck bench docs docs-serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python run.py $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite on every supported Python (3.11, 3.12, 3.13) through nox.
test-all: $(STAMP)
	$(BIN)/nox $(NOX_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check lucent_ws admin_templates tests bench tools run.py noxfile.py
	$(BIN)/ruff format --check lucent_ws admin_templates tests bench tools run.py noxfile.py
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench all

# The documentation site: a strict build into site/ (any warning fails), or a live preview.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --clean

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict

clean:
	rm -rf $(VENV) .nox site build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
