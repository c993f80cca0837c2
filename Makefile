# The two commands a newcomer needs: `make serve` and `make test`.
# Both create the virtual environment on first use and reinstall when pyproject.toml changes.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	if $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test check bench bench-search clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Rapport needs Python 3.11 or newer on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

serve: $(STAMP)
	$(BIN)/rapport serve

# Test files spread over up to four processes (pytest-xdist), a file's tests kept together
# so that its module-scoped database, app and servers start once, the slowest files first
# (tests/conftest.py, SLOW_FIRST); `pytest` alone runs in one.
# schemathesis makes one test per API operation only in a single process (under xdist its
# tests would check nothing), so its file runs in a process of its own beside the others
# (the suite waits on servers and the database more than on the CPU: 13 minutes for both
# at once against 14.5 one after the other on 2 cores); its report follows the suite's.
SCHEMATHESIS := tests/kernel/test_openapi_schemathesis.py
# The scale suite starts servers of its own (a PostgreSQL primary and streaming replica,
# PgBouncer, NATS, three nodes) and `rapport bench` on a data set: `make test-scale`,
# which CI runs once beside the two runs of `make test`.
SCALE_TESTS := tests/scale tests/benchmark
test: $(STAMP)
	@report=$$(mktemp); \
	$(BIN)/python -m pytest $(SCHEMATHESIS) >$$report 2>&1 & schemathesis=$$!; \
	trap 'kill $$schemathesis 2>/dev/null; rm -f $$report' INT TERM; \
	$(BIN)/python -m pytest --numprocesses auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder \
		--ignore $(SCHEMATHESIS) $(addprefix --ignore ,$(SCALE_TESTS)); suite=$$?; \
	wait $$schemathesis; schemathesis=$$?; \
	echo "== $(SCHEMATHESIS), run beside the suite:"; cat $$report; rm -f $$report; \
	test $$suite -eq 0 && test $$schemathesis -eq 0

.PHONY: test-scale
test-scale: $(STAMP)
	$(BIN)/python -m pytest --numprocesses 2 --dist loadfile $(SCALE_TESTS)

bench: $(STAMP)
	$(BIN)/python -m bench.auth_throughput

bench-search: $(STAMP)
	$(BIN)/python -m bench.profile_search

# Messaging (docs/PERFORMANCE.md): sending through HTTP beside a raw INSERT in pgbench, and
# reading at 10M messages (the dataset is generated on the first run, then reused).
.PHONY: bench-messaging bench-messaging-read
bench-messaging: $(STAMP)
	$(BIN)/python -m bench.messaging_send

bench-messaging-read: $(STAMP)
	$(BIN)/python -m bench.messaging_read

# Realtime (docs/PERFORMANCE.md): idle sockets per node and delivery latency by conversation size.
.PHONY: bench-realtime
bench-realtime: $(STAMP)
	$(BIN)/python -m bench.realtime_stream

# Media (docs/PERFORMANCE.md): a 100 MB upload and download through HTTP beside a plain copy, and the server's memory.
.PHONY: bench-media
bench-media: $(STAMP)
	$(BIN)/python -m bench.media_transfer

# The support desk (seed 003): message queries in a 10,000-message support room and participant
# lookups through HTTP, each beside the same statements straight in PostgreSQL, against their budgets.
.PHONY: bench-support
bench-support: $(STAMP)
	$(BIN)/python -m bench.support_room

# The multi-node environment of docs/SCALING.md (PostgreSQL primary, streaming replica,
# PgBouncer, NATS and three nodes), left running until `make scale-env-down`.
SCALE_DIR ?= /tmp/rapport-scale
.PHONY: scale-env scale-env-down
scale-env: $(STAMP)
	$(BIN)/python -m tests.scale.environment up $(SCALE_DIR)

scale-env-down: $(STAMP)
	$(BIN)/python -m tests.scale.environment down $(SCALE_DIR)

clean:
	rm -rf $(VENV) .rapport .pytest_cache

# Types, lint, format and import contracts: what CI runs besides the tests.
check: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
