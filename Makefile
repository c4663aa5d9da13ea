# Everything runs from .local/ (ignored by git). `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .local/venv
PY := $(VENV)/bin/python
STACK := $(PY) deploy/local/stack.py
PACKAGES := contracts/pyproject.toml runtime/pyproject.toml $(wildcard services/*/pyproject.toml)

.PHONY: help venv up down status demo test verify import bench chaos cards token dlq lint format docs schemas lock translations screenshots

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/constraints.txt requirements/dev.txt $(PACKAGES)
	@deploy/local/venv.sh

venv: $(VENV)/.installed ## Create the Python environment in .local/venv

up: venv ## Start Kafka, PostgreSQL and the three services (idempotent)
	@$(STACK) up

down: ## Stop everything `make up` or `make test` started
	@if [ -x $(PY) ]; then $(STACK) down; else echo "[stack] nothing to stop (no .local/venv)"; fi

status: venv ## Show what runs and where it listens
	@$(STACK) status

demo: up ## Start everything, then earn, refund, redeem at another partner, settle, and verify the ledger
	@$(PY) -m deploy.local.demo
	@$(MAKE) --no-print-directory verify

test: venv ## Run unit, contract and integration tests against real Kafka and PostgreSQL
	@$(STACK) test $(PYTEST_ARGS)

verify: venv ## Check every ledger invariant on the running system's database (non-zero exit on failure)
	@$(PY) -m points verify
	@$(PY) -m tools.reconcile
	@$(PY) -m tools.reconcile_orders

import: venv ## Batch import of the old programme: make import FILE=old.csv KIND=members|balances|purchases (DRY_RUN=1; ARGS=--actor ...)
	@$(if $(FILE),,$(error FILE= is required, e.g. make import FILE=deploy/local/samples/balances.csv KIND=balances))
	@$(if $(KIND),,$(error KIND= is required: members, balances or purchases))
	@$(PY) -m points.batch_import $(FILE) --kind $(KIND) $(if $(DRY_RUN),--dry-run) $(ARGS)

bench: venv ## Measure throughput and latency against this machine's limits (BENCH_ARGS=--quick); bench/results/latest.json
	@$(STACK) infra
	@$(PY) -m bench $(BENCH_ARGS)

chaos: venv ## Faults on a platform of its own: make chaos SEED=1 MINUTES=2 (BROKERS=1, KEEP=1); .local/chaos/<seed>/result.json
	@$(PY) -m tools.chaos --seed $(or $(SEED),1) --minutes $(or $(MINUTES),2) $(if $(BROKERS),--brokers $(BROKERS)) $(if $(KEEP),--keep)

cards: venv ## Publish realistic card transactions: make cards CARDS=tok_x,tok_y COUNT=20
	@$(PY) -m tools.cardfeed $(if $(CARDS),--cards $(CARDS),--random-cards 100) --count $(or $(COUNT),20)

token: venv ## Mint a bearer token: make token ROLE=ops SUBJECT=ops-1 (ROLE=member SUBJECT=<member id>; ROLE=partner PARTNER=skymall)
	@$(PY) -m loyalty_runtime.auth --role $(or $(ROLE),ops) --subject $(or $(SUBJECT),ops-1) $(if $(PARTNER),--partner $(PARTNER))

dlq: venv ## Dead letters: list (TOPIC=, REASON=), SHOW=points:17, REPLAY=points:17, REPLAY_TOPIC=<topic>; ARGS= for more
	@$(PY) -m tools.dlq $(strip \
	  $(if $(SHOW),show $(SHOW), \
	  $(if $(REPLAY),replay $(REPLAY), \
	  $(if $(REPLAY_TOPIC),replay --topic $(REPLAY_TOPIC), \
	  $(if $(TOPIC)$(REASON),list $(if $(TOPIC),--topic $(TOPIC)) $(if $(REASON),--reason $(REASON)), \
	  $(ARGS))))))

translations: venv ## Extract the console's messages into its en and zh_CN catalogs (then translate the new zh_CN ones)
	@$(PY) -m tools.translations extract

screenshots: demo ## Regenerate the README's screenshots of the wallet, the portal and the ops console (docs/screenshots/)
	@$(PY) -m tools.screenshots

lint: venv ## ruff, and mypy --strict on the domain code
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy
	@$(PY) -m tools.translations check

format: venv ## Apply ruff's fixes and formatting
	@$(PY) -m ruff check --fix .
	@$(PY) -m ruff format .

schemas: venv ## Regenerate contracts/schemas from the models (refuses breaking changes)
	@$(PY) -m contracts.schemas write

docs: venv ## Write each service's AsyncAPI document to docs/asyncapi/
	@mkdir -p docs/asyncapi
	@for service in partners points redemption; do \
	  $(PY) -m $$service asyncapi > docs/asyncapi/$$service.json && echo "wrote docs/asyncapi/$$service.json"; \
	done

lock: venv ## Re-pin requirements/constraints.txt from the current environment
	@{ head -1 requirements/constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^-e'; } > requirements/constraints.tmp
	@mv requirements/constraints.tmp requirements/constraints.txt
