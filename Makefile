# Two entry points: `make demo` and `make test`. Both create the virtual environment when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The constraints file pins every dependency, including the build backend in pip's build environment.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck unit material bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "appban needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/appban decide examples/transactions.csv
	$(BIN)/appban check --app tiktok --transaction internet_hosting --where US --at 2020-11-12T23:59:00-05:00
	$(BIN)/appban screen inventory examples/inventory/app-store-catalog.csv
	$(BIN)/appban screen inventory examples/inventory/jamf-mobile-device-apps.csv --fleet government --at 2024-06-01T00:00:00Z
	$(BIN)/appban export mdm --where US --at 2024-06-01T00:00:00Z --format jamf
	$(BIN)/appban screen payments examples/payments/processor-export.csv examples/payments/credit-transfers.xml

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

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
	$(BIN)/python bench/network.py --markdown
	$(BIN)/python bench/payments.py --markdown
	$(BIN)/python bench/service.py --markdown

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
