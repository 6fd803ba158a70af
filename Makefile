# Two commands for a newcomer: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := wsgi.py
HOST ?= 127.0.0.1
PORT ?= 5000
SANDBOX_PORT ?= 8001

.PHONY: run test install migrate seed stop bench clean

# The development install: the runtime (requirements.txt) and the tests', benches' and
# `make run`'s tools (requirements-dev.txt). Production installs requirements.txt only.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Migrate, seed the demo city when the database is empty, then start the web app, the
# RQ worker with the cron scheduler, and the WeChat sandbox together (honcho). The app's
# WeChat and WeChat Pay clients are pointed at the sandbox.
run: $(STAMP)
	@REDIS_URL="$${REDIS_URL:-$$($(BIN)/python -m app.embedded_redis)}" && export REDIS_URL && \
	export WECHAT_API_BASE="http://$(HOST):$(SANDBOX_PORT)/sandbox/" \
	       WECHATPAY_API_BASE="http://$(HOST):$(SANDBOX_PORT)/sandbox" \
	       PUBLIC_BASE_URL="http://$(HOST):$(PORT)" \
	       WECHATPAY_NOTIFY_URL="http://$(HOST):$(PORT)/pay/notify" && \
	$(BIN)/flask db upgrade && \
	$(BIN)/flask seed-demo --if-empty && \
	export SANDBOX_MERCHANT_KEY_PATH="$$($(BIN)/flask wechat dev-keys)" && \
	$(BIN)/python -m app.banner $(HOST) $(PORT) $(SANDBOX_PORT) && \
	HOST=$(HOST) APP_PORT=$(PORT) SANDBOX_PORT=$(SANDBOX_PORT) exec $(BIN)/honcho start -f Procfile

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

migrate: $(STAMP)
	$(BIN)/flask db upgrade

seed: $(STAMP)
	$(BIN)/flask seed-demo

# Stop the embedded Redis started by `make run` (the other processes stop with Ctrl-C).
stop: $(STAMP)
	$(BIN)/python -m app.embedded_redis stop

bench: $(STAMP)
	@for b in bench/*/run.py; do [ -f "$$b" ] && $(BIN)/python "$$b"; done; true

clean:
	rm -rf $(VENV) instance/*.db instance/redis*.rdb .pytest_cache
