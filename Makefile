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
# Measured on 2 cores, warm: 2 workers ~315-335 s of pytest, 3 workers ~245 s (two runs,
# one failed a timing sanity check of the bench smoke under the extra load): 2 stays the
# default for CI's sake; PYTEST_WORKERS=3 is faster where a flake costs only a rerun.
PYTEST_WORKERS ?= 2

# `make test-compat`: the real-server suite's core (informers and the watch-list fallback,
# the Client, events, leader election, the samples, garbage collection) against the
# oldest supported Kubernetes (informer/testing/envtest/_versions.py; `python -m
# informer.testing.envtest versions` lists them). COMPAT_K8S=1.34 picks another.
COMPAT_K8S ?= 1.33
COMPAT_TESTS ?= tests/cache/test_informer_e2e.py tests/cache/test_listwatch_real.py \
	tests/client tests/events tests/leaderelection tests/samples \
	tests/testing/test_controller_manager.py

.PHONY: install control-plane test test-compat lint typecheck docs check-generated run bench bench-charts chaos clean

install: $(STAMP)

# The library and, as a distribution of its own, the sample controllers (controllers/):
# both editable, so `make run` and `make test` see the checkout.
$(STAMP): pyproject.toml controllers/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]' -e ./controllers
	@touch $@

# Build (once, cached under .cache/) kube-apiserver, etcd and kube-controller-manager;
# honours KUBEBUILDER_ASSETS. Outside a checkout: python -m informer.testing.envtest install.
control-plane: install
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

# Generated manifests are current: the samples' CRD (from
# controllers/kube_informer_samples/configmap_mirror_types.py)
# and deploy/'s roles (from the samples' watches and declared writes, and the runner's
# --leader-elect). The same commands without --check regenerate them.
SAMPLES := kube_informer_samples.configmap_reloader:ConfigMapReloader \
	kube_informer_samples.deployment_inventory:DeploymentInventory
RBAC_FLAGS := --name kube-informer --service-account kube-informer:kube-informer \
	--label app.kubernetes.io/name=kube-informer
check-generated: install
	$(BIN)/python -m informer.crd generate kube_informer_samples.configmap_mirror_types \
		-o controllers/kube_informer_samples/crds/configmapmirror.yaml --check
	$(BIN)/python -m informer.rbac generate $(SAMPLES) \
		kube_informer_samples.configmap_mirror:ConfigMapMirror \
		$(RBAC_FLAGS) -o deploy/cluster/rbac.yaml --check
	$(BIN)/python -m informer.rbac generate $(SAMPLES) --namespace default \
		$(RBAC_FLAGS) -o deploy/namespaced/watched-namespace-rbac.yaml --check
	$(BIN)/python -m informer.rbac generate --leader-elect --lease-namespace kube-informer \
		$(RBAC_FLAGS) -o deploy/base/leader-election-rbac.yaml --check

test-compat: install
	@assets="$$(hack/build-control-plane.sh --k8s $(COMPAT_K8S))" && \
	KUBEBUILDER_ASSETS="$$assets" $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal \
		$(COMPAT_TESTS) $(PYTEST_ARGS)

run: install
	@assets="$$(hack/build-control-plane.sh)" && \
	KUBEBUILDER_ASSETS="$$assets" $(BIN)/python -m kube_informer_samples.demo --dir $(RUN_DIR)

bench: install
	@assets="$$(hack/build-control-plane.sh)" && \
	KUBEBUILDER_ASSETS="$$assets" $(BIN)/python -m bench $(BENCH_ARGS)

# The docs site's charts (docs/benchmarks/) from the committed runs' JSON (bench/results/):
# after a new run, put its `python -m bench --json FILE` output there (and drop the old).
bench-charts: install
	rm -rf docs/benchmarks
	$(BIN)/python -m bench.charts bench/results/*.json docs/benchmarks/

# Chaos soak (not part of `make test`, which runs a 60 s version): CHAOS_ARGS="--seed 7 --duration 120".
chaos: install
	@assets="$$(hack/build-control-plane.sh)" && \
	KUBEBUILDER_ASSETS="$$assets" $(BIN)/python -m hack.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(RUN_DIR) *.egg-info
	@echo "kept .cache/control-plane (rm -rf .cache to rebuild the control plane)"
