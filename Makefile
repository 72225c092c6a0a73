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

.PHONY: run test lint docs bench clean dist system-run system-test

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	@PYTHON=$(PYTHON) scripts/system-packages.sh pymod:ensurepip:python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip uv

# uv fills the venv from the same index pip would use: venv and test install in ~21 s here,
# where pip took ~90 s (most of what make test spent before its first test).
UV_PIP := $(BIN)/uv pip install -q --python $(BIN)/python

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(UV_PIP) -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(UV_PIP) -e '.[dev]'
	touch $@ $(VENV)/.run-installed

system-run:
	@scripts/system-packages.sh $(SYSTEM_RUN)

system-test:
	@scripts/system-packages.sh $(SYSTEM_TEST)

# Local sources may come from ./media unless QTHUMB_LOCAL_SOURCE_DIRS says otherwise.
run: system-run $(VENV)/.run-installed
	mkdir -p media
	QTHUMB_CONTROL="$${QTHUMB_CONTROL:-1}" QTHUMB_LOCAL_SOURCE_DIRS="$${QTHUMB_LOCAL_SOURCE_DIRS:-$(CURDIR)/media}" $(BIN)/qthumb serve

# mypy reads qthumb.app and qthumb.workers through links (it cannot follow the editable
# install's import hook): .venv/typing/qthumb/app -> app, .venv/typing/qthumb/workers -> workers.
$(VENV)/typing/qthumb/workers: | $(BIN)/python
	mkdir -p $(VENV)/typing/qthumb
	ln -sfn $(CURDIR)/app $(VENV)/typing/qthumb/app
	ln -sfn $(CURDIR)/workers $(VENV)/typing/qthumb/workers

lint: $(VENV)/.test-installed $(VENV)/typing/qthumb/workers
	$(BIN)/ruff check app workers tests bench docs/_hooks
	$(BIN)/ruff format --check app workers tests bench docs/_hooks
	$(BIN)/mypy
	PYTHONPATH=$(VENV)/typing $(BIN)/lint-imports --no-cache

# JavaScript the tests run (Plyr, the Node Qencode SDK), pinned in package-lock.json.
tests/js/node_modules/.package-lock.json: tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --silent

# The suite on several processes (pytest-xdist), one more than the cores: most tests wait on
# servers and subprocesses, and a module's tests stay on one process with its fixtures
# (--dist loadfile). The container image builds in the controlling process meanwhile.
TEST_PROCESSES ?= $(shell echo $$(( $$(nproc) + 1 )))

test: system-test lint tests/js/node_modules/.package-lock.json
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile

# The documentation site, into site/: strict (a broken link or a missing page fails), offline.
docs: $(VENV)/.test-installed
	@scripts/system-packages.sh ffmpeg:ffmpeg /usr/bin/chromium:chromium
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

$(VENV)/.bench-installed: pyproject.toml $(VENV)/.test-installed
	$(UV_PIP) -e '.[dev,bench]'
	bench/work/vcsi-venv/bin/vcsi --help >/dev/null 2>&1 || { rm -rf bench/work/vcsi-venv && \
		python3 -m venv bench/work/vcsi-venv && bench/work/vcsi-venv/bin/pip install -q 'vcsi>=7'; }
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
	$(BIN)/python bench/on_demand_storm.py
	$(BIN)/python bench/pool_throughput.py
	$(BIN)/python bench/realistic.py
	$(BIN)/python bench/lone_task.py
	$(BIN)/python bench/previews.py
	$(BIN)/python bench/scenes.py
	$(BIN)/python bench/encoders.py
	$(BIN)/python bench/suite_time.py

# The wheel a team installs into its own venv (README, "In your test suite"): dist/qthumb-*.whl.
dist: | $(BIN)/python
	$(BIN)/pip wheel -q --no-deps -w dist .

clean:
	rm -rf dist build $(VENV) qthumb-data .pytest_cache .mypy_cache .ruff_cache
