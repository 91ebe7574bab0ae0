# The two commands a newcomer needs: `make run` and `make test`.
# Both bootstrap .venv from the pinned constraints; nothing else is needed beforehand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PARTS := cli openapi mock_providers reference_gateway contract load reports selftest
TYPECHECK_ROOT := build/typecheck

.PHONY: run test lint typecheck unit venv browser bench lock clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "gateproof needs Python 3.11 (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==26.3
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

## make run: the main job on the embedded default target (mock providers + reference gateway)
run: $(STAMP)
	$(BIN)/gateproof run

## make test: lint, format check, type check, then the test suite
test: lint typecheck browser unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' package-dir map, so it checks a tree of symlinks
# that mirrors the installed layout (gateproof/<part> -> <part>/).
typecheck: $(STAMP)
	@rm -rf $(TYPECHECK_ROOT) && mkdir -p $(TYPECHECK_ROOT)/gateproof
	@for p in $(PARTS); do ln -s ../../../$$p $(TYPECHECK_ROOT)/gateproof/$$p; done
	cd $(TYPECHECK_ROOT) && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p gateproof

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test file per worker at a time (module
# fixtures start their servers once). Many tests wait on servers and timeouts rather than compute, so
# four workers pay off even on two cores; TEST_WORKERS=0 runs it in this process alone.
# Tests marked `timing` hold wall-clock time to a bound (a deadline met, a refusal that is quick);
# four workers on two cores starve them, so they run afterwards in one process. Both phases always
# run; the target fails if either did.
TEST_WORKERS ?= 4
unit: $(STAMP)
	@status=0; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m 'not timing' || status=1; \
	$(BIN)/pytest -m timing || status=1; \
	exit $$status

# The report page is checked in a real headless browser (Debian's chromium).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the report page test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

bench: $(STAMP)
	$(BIN)/python benchmarks/mock_throughput.py
	$(BIN)/python benchmarks/mock_fidelity.py
	$(BIN)/python benchmarks/sse_decoder.py
	$(BIN)/python benchmarks/gateway_validation.py
	$(BIN)/python benchmarks/property_forwarder.py
	$(BIN)/python benchmarks/impact_replay.py
	$(BIN)/python benchmarks/compression.py
	$(BIN)/python benchmarks/load_user.py
	$(BIN)/python benchmarks/gateway_overhead.py
	$(BIN)/python benchmarks/paired_resolution.py

lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/pip install --quiet --upgrade pip==26.3
	build/lock-venv/bin/pip install --quiet -e '.[dev]'
	( echo '# Pinned versions of every package gateproof installs (runtime and dev), resolved together.'; \
	  echo '# Regenerate with `make lock` after changing pyproject.toml.'; \
	  build/lock-venv/bin/pip freeze --exclude-editable ) > constraints.txt

clean:
	rm -rf $(VENV) build reports/out .mypy_cache .pytest_cache .ruff_cache
