# videogen: `make run` serves everything, `make test` proves it. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export DJANGO_SETTINGS_MODULE := videogen_site.settings

.PHONY: install install-dev run test lint chart-lint fmt bench fuzz image deploy-smoke clean

install: $(VENV)/.stamp-base
install-dev: $(VENV)/.stamp-dev

# The venv is rebuilt when it is missing, broken or older than the dependency files.
$(VENV)/.stamp-base: pyproject.toml constraints.txt
	@if ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e .
	@touch $@

# The `gpu` extra too, so that the diffusers engine's tests run: torch first, alone and
# pinned, so that it comes from the machine's wheel source (a CPU build); resolving it
# together with diffusers could pull a multi-gigabyte CUDA build instead.
$(VENV)/.stamp-dev: $(VENV)/.stamp-base
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev,gpu]"
	@touch $@

run: install
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py bootstrap
	$(BIN)/python manage.py serve --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(MAKE) --no-print-directory chart-lint

# The Helm chart (helm lint --strict, its manifests against the Kubernetes schemas) and
# compose.yaml, offline, in a few seconds; the first run fetches helm (deploy/chart-lint.sh).
chart-lint: install-dev
	BIN=$(BIN) deploy/chart-lint.sh

fmt: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install-dev
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -n 2

# Submit throughput is also compared with this commit's code (the last before fair share),
# as a ratio to the authenticated read on each (bench/compare.py); empty skips it.
BENCH_BEFORE ?= 1e53f17
# Routing overhead (estimate, route choice, the USD reservation) per submit of a hosted model
# with two routes (fal, then Replicate; neither is called by a submit), against this commit,
# the last before routing and money, as a ratio to the authenticated read on each.
BENCH_ROUTING_BEFORE ?= a4367f8
ROUTED_SUBMIT = {"model": "kling_25", "prompt": "bench", "duration": 5, "resolution": "720p"}

bench: install-dev
	$(BIN)/python bench/run.py
	$(BIN)/python -m bench.fairshare
	$(if $(BENCH_BEFORE),$(BIN)/python -m bench.compare --rev $(BENCH_BEFORE) --against status --only submit)
	$(BIN)/python -m bench.compare --rev $(BENCH_ROUTING_BEFORE) --only submit --against status \
		--rounds 3 --submits 300 --set FAL_KEY=bench --set REPLICATE_API_TOKEN=bench \
		--body '$(ROUTED_SUBMIT)'
	$(BIN)/python -m bench.local_engine
	$(BIN)/python -m bench.stitch
	$(BIN)/python -m bench.provenance
	$(BIN)/python -m bench.watermark
	$(BIN)/python -m bench.diffusers_engine
	$(BIN)/python -m bench.load
	$(BIN)/python -m bench.scale

# Many more generated cases than `make test` runs: schemathesis over the whole OpenAPI
# schema and hypothesis property tests of request parsing. Zero 5xx allowed.
fuzz: install-dev
	VIDEOGEN_FUZZ_EXAMPLES=200 VIDEOGEN_PROPERTY_EXAMPLES=20000 \
		$(BIN)/python -m pytest -p no:xdist -q tests/test_openapi.py tests/test_specs_properties.py

# Containers (deploy/; README "Deploying"). The image: a Debian bookworm base made here with
# mmdebstrap (once), wheels from this machine's package source, then deploy/Containerfile;
# EXTRAS=gpu makes localhost/videogen:gpu. Needs root: it installs podman and friends when
# missing. deploy-smoke runs that image (migrate, web, worker) on a throwaway PostgreSQL and
# Redis and makes one video through the API.
EXTRAS ?=
IMAGE_TAG = localhost/videogen:$(if $(EXTRAS),$(EXTRAS),latest)

image: install-dev
	EXTRAS=$(EXTRAS) IMAGE=$(IMAGE_TAG) PYTHON=$(BIN)/python deploy/image.sh

deploy-smoke: image
	$(BIN)/python deploy/smoke.py --image $(IMAGE_TAG)

clean:
	rm -rf $(VENV)
