# theradose: `make test` and `make demo` work on a fresh clone of a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: help venv system test demo lint bench clean trial fuzz-service

help:
	@echo "make test   - set everything up (venv, system packages) and run the test suite"
	@echo "make demo   - set everything up and run the main job (theradose demo)"
	@echo "make lint   - ruff, mypy --strict on the core, and the import contract (core imports no edge)"
	@echo "make bench  - run the benchmarks in benchmarks/"
	@echo "make trial  - run the virtual multicentre trial (theradose benchmark; hours; docs/pvc.md)"
	@echo "make fuzz-service - schemathesis: every API operation x every role, SQLite and PostgreSQL"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,service,population,test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

system:
	bash scripts/setup-system.sh

test: venv system
	bash scripts/run-tests.sh

demo: venv
	$(BIN)/theradose demo --out demo-out

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python scripts/check_import_contract.py

trial: venv
	$(BIN)/theradose benchmark --out trial-bench

bench: venv
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# Outside CI: >= 40,000 generated requests (about an hour on two busy cores); the CI suite runs a sample.
fuzz-service: venv system
	THERADOSE_FUZZ_EVERY_ROLE=1 THERADOSE_FUZZ_DATABASES=sqlite,postgresql THERADOSE_FUZZ_EXAMPLES=64 \
		bash scripts/run-tests.sh -q -p no:cacheprovider -s tests/service/test_schemathesis.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-out
