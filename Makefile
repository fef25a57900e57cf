# Warden: `make run` serves on the embedded default, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT
# Warden reads .env by its own rule (config.py); flask commands must not load it behind it.
export FLASK_SKIP_DOTENV := 1

.PHONY: run test lint lint-openapi format install install-dev clean docs vendor postman fuzz bench bench-scale bench-retention

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime

install-dev: $(VENV)/.dev

# Node tools from package-lock.json (package.json says what each is for).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## run: upgrade the database and serve with gunicorn on 127.0.0.1:$(PORT)
run: install
	$(BIN)/flask db upgrade
	HOST=127.0.0.1 PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

## test: install the dev requirements and Node tools, run pytest (PostgreSQL with TEST_DATABASE_URL)
test: install-dev node_modules/.installed
	$(BIN)/pytest $(PYTEST_ARGS)

## lint: ruff, mypy and the OpenAPI linters, as CI runs them
lint: install-dev lint-openapi
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy project config.py

## lint-openapi: docs/openapi.json as third-party tools read it (redocly, spectral)
lint-openapi: node_modules/.installed
	npx --no-install redocly lint --config redocly.yaml docs/openapi.json
	npx --no-install spectral lint --fail-severity=warn --ruleset .spectral.yaml docs/openapi.json

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## docs: regenerate docs/openapi.json, docs/errors.md and docs/configuration.md from the code
docs: install-dev
	APP_ENV=testing $(BIN)/dotenv -f tools/openapi.env run --no-override $(BIN)/flask openapi write --format json docs/openapi.json
	APP_ENV=testing $(BIN)/flask docs errors docs/errors.md
	APP_ENV=testing $(BIN)/flask docs settings docs/configuration.md

## vendor: copy ReDoc from the pinned npm package into project/static/redoc and check it
REDOC_DIR := project/static/redoc
vendor: node_modules/.installed
	cp node_modules/redoc/bundles/redoc.standalone.js node_modules/redoc/bundles/redoc.standalone.js.LICENSE.txt node_modules/redoc/LICENSE $(REDOC_DIR)/
	cd $(REDOC_DIR) && sha256sum --check --strict SHA256SUMS

## fuzz: schemathesis against a live gunicorn on PostgreSQL + Redis (FUZZ_MAX_EXAMPLES=30)
fuzz: install-dev
	$(BIN)/python tools/fuzz.py

## postman: run the Postman collection (docs/postman) with newman against a live Warden
postman: install-dev node_modules/.installed
	$(BIN)/python tools/postman.py

## bench: wrk against Warden, the peers and a bare-Flask floor on PostgreSQL + Redis, then
## sign-in with TOTP against the bcrypt bound (docs/performance.md)
bench: install-dev
	$(BIN)/python bench/run.py
	$(BIN)/python bench/totp_login.py

## bench-scale: latencies at 1,000 and 1,000,000 users
bench-scale: install-dev
	$(BIN)/python bench/run.py --scale

## bench-retention: retention clearing a backlog of SIZE sessions and events under load
SIZE ?= 1000000
bench-retention: install-dev
	$(BIN)/python bench/retention.py --size $(SIZE)
