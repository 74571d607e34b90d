# Two commands: `make dev` runs the service with everything it needs; `make test` runs every test.
# Both create .venv from requirements-dev.lock on first use (only Python 3.11+ is needed), with uv when it can be
# had (pip otherwise): tools/install-deps.sh.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.lock pyproject.toml | cksum | cut -d' ' -f1)
export UV_VERSION ?= 0.13.9

.PHONY: dev test lint openapi lock clean browser mailserver pango audit node

$(STAMP): requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	tools/install-deps.sh $(VENV) requirements-dev.lock
	@rm -f $(VENV)/.installed-*
	@touch $@

PORT ?= 8000

dev: $(STAMP) pango  ## run API + worker with embedded PostgreSQL and Redis (unless CRM_DATABASE_URL/CRM_REDIS_URL)
	$(BIN)/crm dev --port $(PORT)

browser:  ## Debian's Chromium and ChromeDriver for the browser tests (installed once, needs root or sudo)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

pango:  ## Debian's Pango, which WeasyPrint renders documents' PDFs with (installed once, needs root or sudo)
	@if ! ldconfig -p 2>/dev/null | grep -q 'libpango-1.0.so.0' || ! ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0'; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0; \
	fi

mailserver:  ## Debian's Dovecot, the IMAP server the mail tests start with a throwaway configuration (installed once)
	@if ! command -v dovecot >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq dovecot-imapd; \
	fi

NODE_TOOLS := tools/openapi/node_modules/.installed-$(shell cat tools/openapi/package-lock.json | cksum | cut -d' ' -f1)

node:  ## Node.js and npm for the OpenAPI checks (Debian's, installed once, needs root or sudo)
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; \
	fi

$(NODE_TOOLS): tools/openapi/package-lock.json | node  ## Spectral, Redocly, openapi-typescript, tsc: pinned by the lock
	npm ci --prefix tools/openapi --no-audit --no-fund --ignore-scripts --loglevel=error
	@rm -f tools/openapi/node_modules/.installed-*
	@touch $@

test: $(STAMP) browser mailserver pango $(NODE_TOOLS)  ## the whole suite: lint, OpenAPI drift, migrations drift, tests (parallel)
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/crm openapi --check
	$(BIN)/python -m pytest -n auto --dist loadfile

audit: $(STAMP)  ## known vulnerabilities in the pinned runtime dependencies (needs pypi.org's vulnerability API)
	$(BIN)/pip-audit -r requirements.lock --require-hashes --disable-pip --strict --progress-spinner off

lint: $(STAMP)
	$(BIN)/ruff check app tests migrations bench

openapi: $(STAMP)  ## regenerate openapi/openapi.json
	$(BIN)/crm openapi

lock:  ## re-pin both lock files after changing pyproject.toml (runtime: requirements.lock; dev and tests: -dev)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile --quiet pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile --quiet pyproject.toml --extra embedded --extra test --generate-hashes --python-version 3.11 -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tools/openapi/node_modules
