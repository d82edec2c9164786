# The two commands of the README's quick start: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DB ?= demo.sqlite3

.PHONY: run test lint demo clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,postgres]'
	touch $(STAMP)

## Build a demo SQLite database (once) and open the staff app on it.
run: $(STAMP)
	@if [ -f $(DEMO_DB) ]; then grep "Staff login" $(DEMO_DB).login 2>/dev/null || true; \
	else $(BIN)/gobiller --database sqlite:///$(DEMO_DB) demo --clients 1000 --login-file $(DEMO_DB).login; fi
	@if [ -t 0 ]; then printf "Press Enter to open the staff app... "; read _; fi
	$(BIN)/gobiller --database sqlite:///$(DEMO_DB)

## Install everything and run the whole test suite.
test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm $(DEMO_DB).login $(DEMO_DB).cron.lock
