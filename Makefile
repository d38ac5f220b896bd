# Two commands: `make run` starts paygrid, `make test` checks it. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: install chromium run test lint typecheck pytest fuzz bench bench-scale clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# The console's browser test drives Debian's chromium through Playwright, which must never
# download a browser of its own. Installed here when missing (as root, with apt); if that is
# impossible, the browser test fails and says why.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
chromium:
	@test -x /usr/bin/chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
		|| echo "could not install chromium: the console's browser test will fail"

run: install
	PAYGRID_WEBHOOK_ALLOW_PRIVATE=1 $(BIN)/paygrid serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy engine schema actors serve_app bench tests

pytest: install chromium
	$(BIN)/pytest

test: lint typecheck pytest

# The fuzz test at 30 examples per operation (`make test` runs 5): see README "Fuzzing".
fuzz: install
	PAYGRID_FUZZ_EXAMPLES=30 $(BIN)/pytest tests/serve_app/test_fuzz.py

# Purchases per configuration, the AML rules' and the rate limiter's cost, webhook delivery,
# renewals of 10,000 subscriptions due at once, the transaction summary job over 1,000,000
# payments, start-up and idle footprint; results are printed and kept under bench/results/
# (git-ignored).
# BENCH_ARGS reach the purchase rows, e.g. `make bench BENCH_ARGS="--repeat 3"`.
bench: install
	$(BIN)/python -m bench.purchase_load $(BENCH_ARGS)
	$(BIN)/python -m bench.aml_cost
	$(BIN)/python -m bench.ratelimit_cost
	$(BIN)/python -m bench.webhook_throughput
	$(BIN)/python -m bench.renewals
	$(BIN)/python -m bench.transaction_summary
	$(BIN)/python -m bench.footprint

# The replicas x shards scaling table at c=256, beside a multi-worker baseline.
bench-scale: install
	$(BIN)/python -m bench.purchase_load --scale $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
