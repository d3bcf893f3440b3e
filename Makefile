# QualityCity — see README.md. Every target installs what it needs; nothing is assumed installed by hand.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test soak up down bench lint venv migrate token clean demo

# A .venv left without pip (an install interrupted while the venv was being created) is made anew.
$(STAMP): pyproject.toml
	@$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

## Embedded suite: four services in one process, SQLite under var/data, on http://127.0.0.1:8000
run: $(STAMP)
	$(VENV)/bin/qcity run --data-dir var/data

## Load a realistic 2011–2015 dataset into the running suite (make run first), then open /dashboard
demo: $(STAMP)
	$(VENV)/bin/qcity demo

## The whole test suite against a real PostgreSQL and a real Kafka broker (started if not running).
## Nothing else uses those servers during the run, so the fault suite's outage tests may stop them.
OUTAGES := QC_FAULT_OUTAGES=1 QC_TEST_PG_CTL=$(CURDIR)/deploy/local/postgres.sh
test: lint
	@$(OUTAGES) bash deploy/local/test.sh $(ARGS)

## The fault matrix at soak size: ≥ 100,000 acknowledged writes in all (QC_FAULT_WRITES per fault),
## against the servers make test uses; prints the table (fault, acknowledged, stored, doubled, recovery)
SOAK_WRITES ?= 9000
soak: $(STAMP)
	@$(OUTAGES) QC_FAULT_WRITES=$(SOAK_WRITES) QC_FAULT_SOAK=1 bash deploy/local/test.sh -q -p no:cacheprovider tests/faults $(ARGS)

## Distributed suite on this machine: Kafka, PostgreSQL, one uvicorn process per service
## (REPLICAS=2: two of each, the second on the port + 10; docs/operations.md)
REPLICAS ?= 1
up: $(STAMP)
	@REPLICAS=$(REPLICAS) bash deploy/local/up.sh

down:
	@bash deploy/local/down.sh

bench: $(STAMP)
	$(PY) -m bench $(ARGS)

## ruff check, ruff format --check and mypy --strict (config in pyproject.toml); make test runs it first
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services qcity

migrate: $(STAMP)
	$(VENV)/bin/qcity migrate all

clean:
	rm -rf var/data test-artifacts
