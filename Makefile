# FinTrack: `make run` serves everything on a fresh machine; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck format bench migrate clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

## Web (API, admin, Swagger UI, sandbox banks), one Celery worker (queues sync, analytics and
## maintenance) and celery-beat; Ctrl-C stops all.
run: migrate
	$(BIN)/python manage.py bootstrap
	bin/run-embedded

## The whole suite: SQLite by default, PostgreSQL/Redis when DATABASE_URL / CELERY_BROKER_URL say so.
test: install
	$(BIN)/pytest -q

## ruff, and the import contract between apps (.importlinter; `bin/app-graph` prints the graph).
lint: install
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .
	$(BIN)/lint-imports --no-cache --no-logo

## mypy on the apps' services, selectors and clients and fintrack.core (mypy.ini says which).
typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks (bench/README.md): PostgreSQL on 127.0.0.1, the sandbox over real HTTP.
bench: install
	bin/bench

clean:
	rm -rf $(VENV) var staticfiles
