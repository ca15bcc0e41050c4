# Every target bootstraps .venv itself, so each works alone on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-min browser lint bench format reference clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# The approval page's browser test drives Debian's chromium (never a browser
# Playwright downloads): installed here when missing, as root or through sudo.
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
browser:
	command -v chromium >/dev/null || ($(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium)

test: $(STAMP) browser
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=90

# The suite against the oldest dependency versions pyproject.toml allows.
MIN_VENV := .venv-min
test-min: browser
	test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MIN_VENV)/bin/python -m pip install --quiet -e '.[dev]' -c .ci/minimum-versions.txt
	$(MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider -x

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks scripts
	$(BIN)/ruff format --check src tests examples benchmarks scripts
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# docs/reference.md: every public name with its summary (tests/test_reference.py checks it).
reference: $(STAMP)
	$(BIN)/python scripts/gen_reference.py

format: $(STAMP)
	$(BIN)/ruff check --fix src tests examples benchmarks scripts
	$(BIN)/ruff format src tests examples benchmarks scripts

clean:
	rm -rf $(VENV) $(MIN_VENV) build dist .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
