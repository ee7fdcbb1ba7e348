# Two commands for a fresh Debian machine with Python >= 3.11:
#   make demo   run the exporter on the embedded demo cluster
#   make test   run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LISTEN ?= 127.0.0.1:9871

.PHONY: install system-deps crd-schemas demo lint test bench rules dashboards image lock clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,solver]'
	touch $@

# Binaries the tests run for real, and the Debian packages that provide them.
# Installed only when missing (apt-get update first, as a fresh machine needs).
SYSTEM_DEPS := promtool:prometheus prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager kubectl:kubernetes-client openssl:openssl \
               podman:podman runc:runc debootstrap:debootstrap newuidmap:uidmap slirp4netns:slirp4netns fuse-overlayfs:fuse-overlayfs \
               node:nodejs npm:npm

system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do \
	  command -v "$${dep%%:*}" >/dev/null 2>&1 || missing="$$missing $${dep#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

demo: install
	$(BIN)/ov-exporter serve --demo --listen $(LISTEN)

# The SARIF 2.1.0 JSON schema (not committed) for the SARIF output tests: fetched once
# from the npm registry into .venv/share/, checked by hash.
$(VENV)/share/sarif-2.1.0.json: $(VENV)/.installed
	$(BIN)/python -m tests.sarif_schema >/dev/null

# The published validators of the ServiceMonitor, PrometheusRule and cert-manager kinds
# (npm, @kubernetes-models/*) for tests/test_crd_schemas.py: installed from the committed
# lock with `npm ci` into .venv/share/crd-schemas.
CRD_SCHEMAS := $(VENV)/share/crd-schemas
crd-schemas: $(CRD_SCHEMAS)/node_modules/.package-lock.json

$(CRD_SCHEMAS)/node_modules/.package-lock.json: $(VENV)/.installed tests/crd_schemas/package.json tests/crd_schemas/package-lock.json | system-deps
	mkdir -p $(CRD_SCHEMAS)
	cp tests/crd_schemas/package.json tests/crd_schemas/package-lock.json $(CRD_SCHEMAS)/
	cd $(CRD_SCHEMAS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# The habits the code is held to: ruff (pyproject [tool.ruff]) and the layering contract (pyproject [tool.importlinter]).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The suite on every core, a test file per worker (pytest-xdist; pyproject's test extra says why).
test: install system-deps crd-schemas $(VENV)/share/sarif-2.1.0.json lint
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# The rule files of every deploy/overlays/<layout>/ (and deploy/README.md's list of alerts a layout
# cannot evaluate) from alerts/*.yaml; RUNBOOK_BASE_URL=... to point runbook links elsewhere.
rules: install
	$(BIN)/python alerts/build.py $(if $(RUNBOOK_BASE_URL),--runbook-base-url $(RUNBOOK_BASE_URL))

# dashboards/<uid>.json and the install variants of deploy/dashboards/ from dashboards/generate.py;
# RUNBOOK_BASE_URL=... to point their runbook links elsewhere.
dashboards: install
	$(BIN)/python dashboards/generate.py

# exporter/requirements.lock: every runtime dependency of pyproject.toml and the build-system
# requirements, exact versions with hashes (the image installs from it with --require-hashes).
lock: install
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --all-build-deps --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file exporter/requirements.lock pyproject.toml

# localhost/ov-exporter:<version> with podman, on the local Debian stand-in base (tests/image.py).
image: install system-deps
	$(BIN)/python -m tests.image build

# What serve does at 10,000 VMs next to the physical limit (exporter/docs/usage.md "Benchmark");
# BENCH_ARGS="--tier S --quick" for a short run. orjson is one of its yardsticks only.
bench: install
	-$(BIN)/pip install --quiet orjson
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info exporter/*.egg-info
