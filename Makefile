# make demo: a fresh machine -> ragloom answering from its own docs, offline.
# make test: the same install plus dev tools, then ruff, mypy and pytest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# torch pinned as a constraint: the CPU build; unpinned, pip fetches the CUDA one (GBs).
CONSTRAINTS := -c constraints.txt
DEMO_DB := ./ragloom-demo.db
QUESTION ?= How do I point ragloom at a Milvus server?

.PHONY: demo test install install-dev browser lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install --quiet $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet $(CONSTRAINTS) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/ragloom ingest docs --uri $(DEMO_DB)
	@echo
	@echo "Q: $(QUESTION)"
	@echo
	$(BIN)/ragloom search "$(QUESTION)" -k 3 --uri $(DEMO_DB)
	@echo
	$(BIN)/ragloom ask "$(QUESTION)" --uri $(DEMO_DB)

lint: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install-dev
	$(BIN)/mypy

# tests/test_browser.py drives Debian's Chromium through Playwright (Playwright's own
# browser download is not used); installed here when missing, as root.
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	  else \
	    echo "the browser test needs $(CHROMIUM): sudo apt-get install -y chromium" >&2; \
	    exit 1; \
	  fi; }

pytest: install-dev browser
	RAGLOOM_REQUIRE_BROWSER=1 $(BIN)/python -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(DEMO_DB) .pytest_cache .mypy_cache .ruff_cache
