# kube-informer: the two commands a user needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN_DIR := .cache/run
# pytest-xdist workers for `make test`: each worker is its own pytest session, so each
# starts its own control plane (session fixture) and tests never share a server with
# another worker's. Most of the suite waits on real clocks and child processes, so two
# workers overlap those waits even on 2 cores. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2

.PHONY: install control-plane test lint typecheck docs check-generated run bench chaos clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

# Build (once, cached under .cache/) kube-apiserver and etcd; honours KUBEBUILDER_ASSETS.
control-plane:
	@hack/build-control-plane.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The documentation site, into .cache/site (git-ignored). Strict: a broken link, a page
# missing from the nav or an unresolved cross-reference (docs or docstrings) fails it.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: install
	@assets="$$(hack/build-control-plane.sh)" && \
	$(BIN)/ruff check . && \
	$(BIN)/ruff format --check . && \
	$(BIN)/mypy && \
	$(MAKE) --no-print-directory check-generated && \
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet && \
	KUBEBUILDER_ASSETS="$$assets" $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# Generated manifests are current: the samples' CRD (from controllers/configmap_mirror_types.py)
# and deploy/'s roles (from the samples' watches and declared writes, and the runner's
# --leader-elect). The same commands without --check regenerate them.
SAMPLES := controllers.configmap_reloader:ConfigMapReloader \
	controllers.deployment_inventory:DeploymentInventory
RBAC_FLAGS := --name kube-informer --service-account kube-informer:kube-informer \
	--label app.kubernetes.io/name=kube-informer
check-generated: install
	$(BIN)/python -m informer.crd generate controllers.configmap_mirror_types \
		-o controllers/crds/configmapmirror.yaml --check
	$(BIN)/python -m informer.rbac generate $(SAMPLES) controllers.configmap_mirror:ConfigMapMirror \
		$(RBAC_FLAGS) -o deploy/cluster/rbac.yaml --check
	$(BIN)/python -m informer.rbac generate $(SAMPLES) --namespace default \
		$(RBAC_FLAGS) -o deploy/namespaced/watched-namespace-rbac.yaml --check
	$(BIN)/python -m informer.rbac generate --leader-elect --lease-namespace kube-informer \
		$(RBAC_FLAGS) -o deploy/base/leader-election-rbac.yaml --check

run: install
	@assets="$$(hack/build-control-plane.sh)" && \
	KUBEBUILDER_ASSETS="$$assets" $(BIN)/python -m controllers.demo --dir $(RUN_DIR)

bench: install
	@assets="$$(hack/build-control-plane.sh)" && \
	KUBEBUILDER_ASSETS="$$assets" $(BIN)/python -m bench $(BENCH_ARGS)

# Chaos soak (not part of `make test`, which runs a 60 s version): CHAOS_ARGS="--seed 7 --duration 120".
chaos: install
	@assets="$$(hack/build-control-plane.sh)" && \
	KUBEBUILDER_ASSETS="$$assets" $(BIN)/python -m hack.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(RUN_DIR) *.egg-info
	@echo "kept .cache/control-plane (rm -rf .cache to rebuild the control plane)"
