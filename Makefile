# Entry points, all self-contained on a fresh machine (each creates .venv and installs sensorprint first):
#   make demo    -> runs the simulated demo case
#   make test    -> the code checks (make lint), then the whole test suite; any failure fails the build
#   make lint    -> ruff check, ruff format --check, lint-imports (the layers of DESIGN.md, see pyproject.toml)
#   make format  -> applies ruff's safe fixes and its formatting to the whole tree
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sensorprint demo --out demo-case

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The browser tests drive Debian's chromium (no browser download); CI runs as root with apt reachable.
test: lint
	test -x /usr/bin/chromium -a -x /usr/bin/pdftotext || { apt-get update -qq && apt-get install -y -qq chromium poppler-utils; }
	$(PY) -m pytest -q

bench: $(STAMP)
	for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) demo-case build src/*.egg-info .ruff_cache .import_linter_cache
