# Two commands on a fresh machine: `make demo` and `make test`. Both install the LOCKED set (uv.lock) into .venv.
#
#   make relock       after adding or changing a dependency in pyproject.toml: resolves what changed and keeps
#                     every other pin (commit pyproject.toml and uv.lock together; on a uv.lock conflict in a
#                     rebase, take main's uv.lock and run `make relock` again rather than merging it by hand)
#   make lock         moves the whole lock to the newest releases, then installs them: run `make test` and
#                     commit uv.lock only if it passes. Upgrading is a deliberate, tested step.
#   make test-latest  the suite on the newest releases, in .venv-latest, without touching the lock
#   make test-lowest  the suite on the lowest versions pyproject.toml allows, in .venv-lowest (honest lower bounds)
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# `soak` tests run for many minutes at API-budget speed: CI (make test) must stay under 10 minutes.
# Four workers on two cores: the suite mostly waits on rate limits and sandboxes, and more workers
# fill those waits (timings in the commits that set it).
PYTEST  = -m pytest -q -n 4 --dist loadfile -m "not soak"

# uv reads the lock; it is pinned too, installed with pip into .tools/ (a fresh machine has only python3 and pip).
UV_VERSION = 0.13.9
TOOLS      = .tools
UV         = $(TOOLS)/bin/uv
UV_STAMP   = $(TOOLS)/.uv-$(UV_VERSION)
export UV_PYTHON_DOWNLOADS = never
export UV_PROJECT_ENVIRONMENT = $(VENV)

.PHONY: install demo test test-fast soak test-latest test-lowest lock relock bench lint clean sandbox

$(UV_STAMP):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q uv==$(UV_VERSION)
	touch $(UV_STAMP)

$(STAMP): pyproject.toml uv.lock $(UV_STAMP)
	@$(UV) sync -q --locked --extra dev --python $(PYTHON) \
	  || { echo "uv.lock does not match pyproject.toml: run 'make relock' and commit uv.lock" >&2; exit 1; }
	touch $(STAMP)

install: $(STAMP)

relock: $(UV_STAMP)
	$(UV) lock --python $(PYTHON)
	$(MAKE) install

lock: $(UV_STAMP)
	$(UV) lock --upgrade --python $(PYTHON)
	$(MAKE) install
	@echo "uv.lock now holds the newest releases: run 'make test', and commit uv.lock only if it passes"

# Fresh each time, resolved without the lock (and without its [tool.uv] constraints): what a new user gets today.
test-latest: $(UV_STAMP)
	rm -rf .venv-latest
	$(UV) venv -q --python $(PYTHON) .venv-latest
	$(UV) pip install -q --python .venv-latest/bin/python -e '.[dev]'
	$(UV) pip freeze --python .venv-latest/bin/python --exclude-editable > .venv-latest/versions.txt
	.venv-latest/bin/python $(PYTEST)

test-lowest: $(UV_STAMP)
	rm -rf .venv-lowest
	$(UV) venv -q --python $(PYTHON) .venv-lowest
	$(UV) pip install -q --python .venv-lowest/bin/python --resolution lowest-direct -e '.[dev]'
	$(UV) pip freeze --python .venv-lowest/bin/python --exclude-editable > .venv-lowest/versions.txt
	.venv-lowest/bin/python $(PYTEST)

demo: install
	bash scripts/demo.sh

test: install
	$(PY) $(PYTEST)

test-fast: install
	$(PY) $(PYTEST) -m "not slow and not soak"

soak: install
	$(PY) -m pytest -q -n 2 --dist loadfile -m soak

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check etl tests bench
	$(VENV)/bin/mypy

sandbox: install
	$(VENV)/bin/leadgenius-etl sandbox

clean:
	rm -rf $(VENV) .venv-latest .venv-lowest $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .leadgenius-etl out
