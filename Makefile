# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: install demo test test-fast bench lint clean sandbox

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	bash scripts/demo.sh

test: install
	$(PY) -m pytest -q -n 2 --dist loadfile

test-fast: install
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow"

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check etl tests bench
	$(VENV)/bin/mypy

sandbox: install
	$(VENV)/bin/leadgenius-etl sandbox

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .leadgenius-etl out
