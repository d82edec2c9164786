# The two commands of the README's quick start: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DEMO_DB ?= demo.sqlite3
DEMO_MAILDIR ?= demo.Maildir
CONFIG := gobiller.toml
# The first line of the gobiller.toml that `make run` writes: `make clean` deletes only a
# file that starts with it, never one you wrote.
CONFIG_MARK := \# Written by `make run` for the demo: delete this line to keep the file on `make clean`.

.PHONY: run test lint demo clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,postgres]'
	touch $(STAMP)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,dev,postgres]'
	touch $(STAMP) $(DEV_STAMP)

## Build a demo SQLite database (once), point gobiller.toml at it, open the staff app.
run: $(STAMP)
	@if [ -f $(DEMO_DB) ]; then grep "Staff login" $(DEMO_DB).login 2>/dev/null || true; \
	else $(BIN)/gobiller --database sqlite:///$(DEMO_DB) demo --clients 1000 --login-file $(DEMO_DB).login; fi
	@if [ ! -e $(CONFIG) ]; then \
		printf '%s\n' '$(CONFIG_MARK)' '[database]' 'url = "sqlite:///$(DEMO_DB)"' '' \
			'[mail]  # without SMTP, mail is delivered into this Maildir (mutt -f $(DEMO_MAILDIR))' \
			'maildir = "$(DEMO_MAILDIR)"' > $(CONFIG); \
		echo "Wrote $(CONFIG): run in this folder, $(BIN)/gobiller cron, explain, mail list ... act on $(DEMO_DB); mail lands in $(DEMO_MAILDIR)/"; \
	elif ! head -n 1 $(CONFIG) | grep -qxF '$(CONFIG_MARK)'; then \
		echo "$(CONFIG) is yours: left as it is. Commands in this folder use its database; add --database sqlite:///$(DEMO_DB) for the demo."; \
	fi
	@if [ -t 0 ]; then printf "Press Enter to open the staff app... "; read _; \
	else echo "Not a terminal: open the staff app with $(BIN)/gobiller in one."; exit 0; fi; \
	$(BIN)/gobiller --database sqlite:///$(DEMO_DB)

## Install everything and run the whole test suite, one worker per CPU (pytest-xdist;
## worksteal: a worker that is done takes tests queued for a busy one).
test: $(STAMP)
	$(BIN)/pytest -n auto --dist worksteal

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm $(DEMO_DB).login $(DEMO_DB).cron.lock $(DEMO_MAILDIR)
	@if [ -f $(CONFIG) ] && head -n 1 $(CONFIG) | grep -qxF '$(CONFIG_MARK)'; then rm -f $(CONFIG); \
	elif [ -e $(CONFIG) ]; then echo "$(CONFIG) kept: make run did not write it"; fi
