# zkml: two commands on a fresh machine.
#   make demo   set everything up (venv, pip, npm) and run compile -> prove -> verify on the bundled digits model
#   make test   set up, then run the test suite (real proofs, real solc, real anvil)
#   make test-fast  the fast loop: the suite without the chain/cluster/service modules and long tests
#   make fuzz   the registry's stateful property tests with the long Hypothesis profile (~10 min)

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
ZKML   := $(VENV)/bin/zkml
STAMP  := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: setup demo audit-demo test test-fast fuzz bench bench-gas clean

setup: $(STAMP) $(NPM_STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || (echo "error: $(PYTHON) not found (zkml needs Python 3.11)" >&2; exit 2)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@# Bytecode once, here: with PYTHONDONTWRITEBYTECODE set, neither pip nor Python writes it, and every
	@# zkml process would recompile typer and zkml from source (~0.1 s of a warm `zkml prove`).
	$(PY) -m compileall -q -j 0 zkml cli $(VENV)/lib/python3.11/site-packages >/dev/null || true
	touch $@

$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || (echo "error: npm not found (needed for solc-js and anvil)" >&2; exit 2)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	@bash scripts/demo.sh

audit-demo: setup
	@bash scripts/audit_demo.sh

test: setup
	$(PY) -m pytest -q

# The fast loop: everything but the chain/cluster/service modules and the long tests (pytest -m "not slow").
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# The long run of tests/onchain/test_registry_fuzz.py (ZKML_FUZZ=long: random seeds, ZKML_FUZZ_EXAMPLES examples of
# ZKML_FUZZ_STEPS steps), with Hypothesis' statistics and the state machine's per-rule outcome counts.
fuzz: setup
	ZKML_FUZZ=long $(PY) -m pytest -q -s tests/onchain/test_registry_fuzz.py --hypothesis-show-statistics -p no:cacheprovider

bench: setup
	$(PY) benches/bench_prove.py

bench-gas: setup
	$(PY) benches/bench_gas.py

clean:
	rm -rf .zkml .pytest_cache benches/out
