# make run / make test work on a fresh Debian machine with only Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SYSTEM_RUN := ffmpeg:ffmpeg
# redis-server and PostgreSQL 15: the distributed backend's tests start their own on loopback
SYSTEM_TEST := $(SYSTEM_RUN) /usr/bin/chromium:chromium npm:npm redis-server:redis-server \
	/usr/lib/postgresql/15/bin/initdb:postgresql runuser:util-linux \
	podman:podman runc:runc newuidmap:uidmap mmdebstrap:mmdebstrap \
	/usr/lib/cni/dnsname:golang-github-containernetworking-plugin-dnsname

.PHONY: run test lint bench clean system-run system-test

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	@PYTHON=$(PYTHON) scripts/system-packages.sh pymod:ensurepip:python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.run-installed

system-run:
	@scripts/system-packages.sh $(SYSTEM_RUN)

system-test:
	@scripts/system-packages.sh $(SYSTEM_TEST)

# Local sources may come from ./media unless QTHUMB_LOCAL_SOURCE_DIRS says otherwise.
run: system-run $(VENV)/.run-installed
	mkdir -p media
	QTHUMB_LOCAL_SOURCE_DIRS="$${QTHUMB_LOCAL_SOURCE_DIRS:-$(CURDIR)/media}" $(BIN)/qthumb serve

lint: $(VENV)/.test-installed
	$(BIN)/ruff check app workers tests bench
	$(BIN)/ruff format --check app workers tests bench
	$(BIN)/mypy

# JavaScript the tests run (Plyr, the Node Qencode SDK), pinned in package-lock.json.
tests/js/node_modules/.package-lock.json: tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --silent

test: system-test lint tests/js/node_modules/.package-lock.json
	$(BIN)/pytest

$(VENV)/.bench-installed: pyproject.toml $(VENV)/.test-installed
	$(BIN)/pip install -q -e '.[dev,bench]'
	test -x bench/work/vcsi-venv/bin/vcsi || { python3 -m venv bench/work/vcsi-venv && \
		bench/work/vcsi-venv/bin/pip install -q 'vcsi>=7'; }
	touch $@

# Generates its own sources (several GB in bench/work) and writes bench/RESULTS.md.
bench: $(VENV)/.bench-installed
	@scripts/system-packages.sh ffmpeg:ffmpeg ffmpegthumbnailer:ffmpegthumbnailer /usr/bin/time:time \
		wrk:wrk redis-server:redis-server /usr/lib/postgresql/15/bin/initdb:postgresql
	$(BIN)/python bench/run.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/backends.py
	$(BIN)/python bench/folder.py
	$(BIN)/python bench/on_demand.py
	$(BIN)/python bench/realistic.py

clean:
	rm -rf $(VENV) qthumb-data .pytest_cache .mypy_cache .ruff_cache
