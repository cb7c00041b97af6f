# Two commands: `make run` (the app on http://127.0.0.1:8000) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint bench loadtest chaos screenshots install clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

# axe-core for the browser tests' accessibility checks (only the tests need node: `make run` doesn't).
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: export DEBUG ?= 1
run: export SITE_URL ?= http://127.0.0.1:$(PORT)
run: export SANDBOX_STATE_DIR ?= $(CURDIR)/var/sandbox
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Open http://127.0.0.1:$(PORT)/"
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

lint: install
	$(VENV)/bin/ruff check .

test: install node_modules/.installed
	$(VENV)/bin/ruff check .
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run
	DEBUG=1 $(PY) -m pytest -n 2 --dist loadfile

bench: install
	$(PY) bench/slots_bench.py

# The booking flow under load: gunicorn (DEBUG=0), PostgreSQL, Redis, a Celery worker and an SMTP server, driven by
# an asyncio load generator in its own process; requests/s, latencies and server CPU ms per request per phase.
# About 3 minutes; LOADTEST_SECONDS=5 for a quick look. Writes bench/results/loadtest.json.
loadtest: install
	$(PY) bench/loadtest.py

# Faults injected into the whole stack (PostgreSQL, redis-server, gunicorn, Celery worker and beat, SMTP, Zoom
# sandbox): nothing lost, nothing doubled. About 20 minutes; CHAOS_ARGS="--only smtp_451 --outage 30" for less.
chaos: install
	$(PY) bench/chaos.py $(CHAOS_ARGS)

# README screenshots into docs/screenshots/ (the demo organization, served on a free port).
screenshots: install
	DEBUG=1 $(PY) bench/screenshots.py

clean:
	rm -rf $(VENV) node_modules db.sqlite3 staticfiles .pytest_cache tests/e2e/artifacts
