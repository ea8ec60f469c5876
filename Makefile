# stepsaga — every target creates .venv and installs the project first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
CDK    := infra/node_modules/.bin/cdk
CDKRUN := cd infra && ./node_modules/.bin/cdk

.PHONY: demo test reliability lint typecheck bench install infra-deps synth diff deploy destroy deploy-local diff-local destroy-local clean browser-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

## Run the Order-to-Cash demo on SQLite and the local AWS emulator.
demo: $(STAMP)
	$(BIN)/stepsaga demo

## The whole suite: lint, types, then every test (PostgreSQL tests skip only where no server answers).
test: $(STAMP) $(CDK) browser-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

## Headless Chromium for the console's browser test (Debian packages; installed only as
## root and only when missing — elsewhere that test skips and says why).
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "browser-deps: chromium/chromium-driver missing and not root: the browser test will skip"; fi

## The fault-injection run, then the mutation check (docs/reliability.md): ORDERS=300, DATABASE=both|sqlite|postgres, SEED=.
ORDERS ?= 300
DATABASE ?= both
reliability: $(STAMP)
	$(BIN)/python -m tests.reliability --orders $(ORDERS) --database $(DATABASE) $(if $(SEED),--seed $(SEED))
	$(BIN)/python -m tests.reliability.mutations

## Benchmarks print their figures; see docs/performance.md.
bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/ceiling.py
	$(BIN)/python benchmarks/order_to_cash.py
	$(BIN)/python benchmarks/peer_dbos.py
	$(BIN)/python benchmarks/peer_restate.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/sqs.py
	$(BIN)/python benchmarks/sqs_model.py
	$(BIN)/python benchmarks/cost.py

## The pinned CDK CLI (infra/package.json, npm ci from the lock file).
infra-deps: $(CDK)

$(CDK): infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## CDK: synthesize, diff, deploy, destroy a stage (STAGE=dev by default; its settings are
## infra/stages/$(STAGE).json; CDK_ARGS for more CLI options). A deploy adopts what an
## earlier destroy retained (--import-existing-resources); destroy asks CONFIRM=stepsaga-$(STAGE).
STAGE ?= dev
synth: $(STAMP) $(CDK)
	$(CDKRUN) synth -c stepsaga:stage=$(STAGE) $(CDK_ARGS)

diff: $(STAMP) $(CDK)
	$(CDKRUN) diff -c stepsaga:stage=$(STAGE) $(CDK_ARGS)

deploy: $(STAMP) $(CDK)
	$(CDKRUN) deploy -c stepsaga:stage=$(STAGE) --import-existing-resources $(CDK_ARGS)

destroy: $(STAMP) $(CDK)
	@test "$(CONFIRM)" = "stepsaga-$(STAGE)" || { echo "make destroy: set CONFIRM=stepsaga-$(STAGE) to destroy that stack"; exit 2; }
	$(CDKRUN) destroy stepsaga-$(STAGE) -c stepsaga:stage=$(STAGE) --force $(CDK_ARGS)

## The stack on the local emulator (docs/deploy.md, "On your machine"): started for you;
## the workers' settings land in .stepsaga/local.env.
deploy-local: $(STAMP) $(CDK)
	$(BIN)/stepsaga local deploy --env-file .stepsaga/local.env

diff-local: $(STAMP) $(CDK)
	$(BIN)/stepsaga local diff

destroy-local: $(STAMP) $(CDK)
	$(BIN)/stepsaga local destroy

clean:
	rm -rf $(VENV) infra/node_modules infra/cdk.out .stepsaga .pytest_cache .mypy_cache .ruff_cache
