# lojix: `make run` starts everything on the embedded default; `make test` runs the suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never
PORT ?= 8000
# Links in emails: the port the web process listens on. Set for every process, since honcho
# gives each Procfile process a PORT of its own (web 8000, worker 8100, beat 8200).
LOJIX_SITE_URL ?= http://127.0.0.1:$(PORT)

.PHONY: install migrate static demo demo-reset run test test-long test-sqlite lint format bench check docs clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	uv sync --frozen --quiet
	@touch $@

migrate: install
	$(PY) manage.py migrate --noinput

# DEBUG is off in the demo (config/settings/base.py): WhiteNoise serves the CSS and JS from
# STATIC_ROOT, so collect them first.
static: install
	$(PY) manage.py collectstatic --noinput --verbosity 0

demo: migrate static
	$(PY) manage.py load_demo

# Empty the database and load the demo again, its time-sensitive cases counted from now.
demo-reset: migrate static
	$(PY) manage.py load_demo --reset --noinput

run: demo
	@echo ""
	@echo "  lojix is starting at http://127.0.0.1:$(PORT)/  (admin: http://127.0.0.1:$(PORT)/admin/)"
	@echo "  web + Celery worker + Celery beat; Ctrl-C stops all three."
	@echo ""
	PORT=$(PORT) LOJIX_SITE_URL=$(LOJIX_SITE_URL) $(VENV)/bin/honcho start -f Procfile

# The whole suite, against PostgreSQL and Redis (DATABASE_URL / REDIS_URL, see config/settings/test.py),
# then the money, ledger and page tests again on SQLite, the embedded default (D-7).
# Two pytest-xdist workers (the CI machine's two cores), each with its own database and Redis db.
# Last, the long fault tests (marked `long`, which a plain `pytest` deselects), one at a time.
PYTEST_WORKERS ?= 2
test: install
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist worksteal
	$(MAKE) test-sqlite
	$(MAKE) test-long

# Faults under load (issue 11): PostgreSQL backends terminated, Redis down, the processor failing,
# each with real web, worker and beat processes; serially, each under a hard timeout. By path, not
# by collecting the whole suite to find them; tests/test_long_tests.py checks the list is whole.
LONG_TESTS := \
	tests/core/test_fault_database_terminated.py tests/core/test_fault_redis_down.py \
	tests/disputes/test_fault_outage_processor.py

test-long: install
	$(VENV)/bin/pytest -m long --durations=10 $(LONG_TESTS)

# Tests marked `postgres` (real concurrency, row locks) run only in the PostgreSQL suite.
SQLITE_TESTS := \
	tests/orders/test_pricing_policy.py tests/orders/test_placement.py tests/orders/test_pages.py \
	tests/orders/test_seller_pages.py tests/orders/test_cancellation_pages.py \
	tests/orders/test_seller_cancellation_pages.py tests/orders/test_admin.py \
	tests/refunds/test_refund_service.py tests/refunds/test_seller_ledger.py \
	tests/refunds/test_pages.py tests/refunds/test_admin_review.py \
	tests/credits/test_pages.py tests/credits/test_admin.py tests/core/test_money_exact.py \
	tests/orders/test_missing_services.py \
	tests/disputes/test_escalation_services.py tests/disputes/test_escalation_pages.py \
	tests/disputes/test_escalation_admin.py \
	tests/disputes/test_chargebacks.py tests/disputes/test_suspension_pages.py \
	tests/core/test_admin_approvals.py tests/core/test_error_pages.py \
	tests/orders/test_seller_menu.py tests/orders/test_seller_order_page.py \
	tests/orders/test_api_catalogue.py tests/core/test_forms_keep_input.py \
	tests/test_rendered_words.py tests/core/test_admin_money.py \
	tests/core/test_ledger_state_machine.py tests/core/test_site_header.py

test-sqlite: install
	DATABASE_URL=sqlite://:memory: $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist worksteal -m "not postgres" $(SQLITE_TESTS)

# Performance as ratios against baselines measured in the same run (D-11, tests/bench/README.md);
# creates and drops its own database (bench_ + the name in DATABASE_URL); exits 1 past a threshold.
# The throughput figures load gunicorn with wrk (Debian: apt-get install wrk). `make bench
# BENCH=gunicorn` runs only the benchmarks whose name has one of the words in BENCH.
BENCH ?=
bench: static
	@command -v wrk >/dev/null 2>&1 || { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(PY) -m tests.bench.run $(BENCH)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check: install
	$(PY) manage.py check_ledgers

# docs/policy-map.md from the code: every clause, the functions implementing it, its tests
# (tests/test_docs.py fails when the committed file is stale).
docs: install
	$(PY) manage.py policy_map

clean:
	rm -rf $(VENV) var db.sqlite3 db.sqlite3-* media
