# Two entry points: `make demo` and `make test`. Both create the virtual environment when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The constraints file pins every dependency, including the build backend in pip's build environment.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck unit material bench fuzz clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "appban needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@# Bytecode as an installed wheel has it (pip compiles it), also where PYTHONDONTWRITEBYTECODE is set.
	@$(BIN)/python -m compileall -q src >/dev/null
	$(BIN)/appban decide examples/transactions.csv
	$(BIN)/appban check --app tiktok --transaction internet_hosting --where US --at 2020-11-12T23:59:00-05:00
	$(BIN)/appban screen inventory examples/inventory/app-store-catalog.csv
	$(BIN)/appban screen inventory examples/inventory/jamf-mobile-device-apps.csv --fleet government --at 2024-06-01T00:00:00Z
	$(BIN)/appban export mdm --where US --at 2024-06-01T00:00:00Z --format jamf
	@# Line 12 of the processor export is unreadable on purpose: exit 1 reports it (README, Exit codes).
	$(BIN)/appban screen payments examples/payments/processor-export.csv examples/payments/credit-transfers.xml || test $$? -eq 1

lint: $(STAMP)
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz

typecheck: $(STAMP)
	$(BIN)/mypy src

# Real third-party SDK packages and the Android/iOS build tools the scanner's tests use.
material: $(STAMP)
	bash scripts/setup-test-material.sh

unit: $(STAMP) material
	$(BIN)/python -m pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/decide.py --markdown
	$(BIN)/python bench/inventory.py --markdown
	$(BIN)/python bench/code.py --markdown
	$(BIN)/python bench/source_tree.py --markdown
	$(BIN)/python bench/network.py --markdown
	$(BIN)/python bench/payments.py --markdown
	$(BIN)/python bench/review.py --markdown
	$(BIN)/python bench/service.py --markdown

# The long fuzzing campaign (FUZZING.md): FUZZ_INPUTS new inputs per target (8 targets) after replaying the
# corpus of inputs that once failed, then the service under hostile requests and schemathesis. New failures
# are added to fuzz/corpus/; the results table goes to fuzz/last-run.md. `make test` runs a short budget.
FUZZ_INPUTS ?= 12500
FUZZ_SEED ?= 1
FUZZ_WORKERS ?= 2
fuzz: $(STAMP)
	status=0; \
	$(BIN)/python -m fuzz.run --inputs $(FUZZ_INPUTS) --seed $(FUZZ_SEED) --workers $(FUZZ_WORKERS) \
		--summary fuzz/last-run.md || status=1; \
	$(BIN)/python -m fuzz.api --max-examples 200 --seed $(FUZZ_SEED) --output fuzz/last-api-run.txt || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
