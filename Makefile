# waikan — every target installs what it needs itself (fresh machine: Python 3.11 + make).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SHELL := /bin/bash

.PHONY: demo test test-pg test-slow eval bench lint install clean deps-browser deps-services

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python venv module missing: installing python3-venv"; \
	  rm -rf $(VENV); apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; \
	  $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/waikan demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests eval bench scripts
	$(BIN)/mypy

# Browser tests drive Debian's chromium (no playwright download); CJK text needs fonts-noto-cjk.
deps-browser:
	@if [ ! -x /usr/bin/chromium ] || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then \
	  echo "installing chromium and fonts-noto-cjk (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium fonts-noto-cjk >/dev/null; fi

# Store and queue tests start their own PostgreSQL 15 and Redis (Debian packages) on loopback.
deps-services:
	@if [ ! -x /usr/lib/postgresql/15/bin/initdb ] || ! command -v redis-server >/dev/null; then \
	  echo "installing postgresql and redis-server (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    postgresql-15 redis-server >/dev/null; fi

test: $(VENV)/.installed-test lint deps-browser deps-services
	@start=$$(date +%s); $(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; \
	  echo "make test: $$(( $$(date +%s) - start )) s"; exit $$rc

# The same selection with every store on a real PostgreSQL server the test setup starts
# (tests/pgmode); tests of the SQLite file itself are marked SQLITE_ONLY and skip (-rs lists them).
test-pg: $(VENV)/.installed-test deps-browser deps-services
	@start=$$(date +%s); WAIKAN_TEST_STORE=pg $(BIN)/python -m pytest -q -rs -p no:cacheprovider; rc=$$?; \
	  echo "make test-pg: $$(( $$(date +%s) - start )) s"; exit $$rc

test-slow: $(VENV)/.installed-test deps-browser deps-services
	@start=$$(date +%s); $(BIN)/python -m pytest -q -p no:cacheprovider -m slow; rc=$$?; \
	  echo "make test-slow: $$(( $$(date +%s) - start )) s"; exit $$rc

eval: $(VENV)/.installed-test
	$(BIN)/python eval/run.py

bench: $(VENV)/.installed-test deps-services
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build src/*.egg-info
