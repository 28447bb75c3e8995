# The two commands of this project: `make demo` and `make test`.
# Both bootstrap what they need (tools/bootstrap.sh) idempotently.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
COLLECTION_COPY := $(ROOT)/.build/ansible_collections/cloudkit/provisioning
PY_VERSION := 3.11

# ansible, ansible-lint and the tests find this collection and its dependencies here.
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.build
# Keep ansible's own state (and anything a tool installs there) inside the project, so a stale copy
# of this collection in ~/.ansible/collections can never shadow the one under test.
export ANSIBLE_HOME := $(ROOT)/.ansible
export PATH := $(BIN):$(PATH)

# The Kubernetes API the local stack runs on (tests/stack/apis.py): kube-apiserver, kube-controller-manager and etcd built
# from their Go modules by `make bootstrap` (tools/k8s), or the embedded stand-in (tests/stack/kubeapi, no build).
# `make test` runs on kube-apiserver, and the contract suite a second time on the stand-in; `make demo` on the stand-in.
TEST_API ?= kube-apiserver
DEMO_API ?= stand-in
# A real cluster for the demo only when named here (make demo DEMO_KUBECONFIG=~/.kube/config), never from KUBECONFIG.
DEMO_KUBECONFIG ?=
# Build the control plane only when a run needs it (CLOUDKIT_SKIP_K8S_BUILD=1 skips tools/k8s/build.sh).
skip_build = $(if $(filter kube-apiserver,$(1)),,1)

.PHONY: test demo bootstrap sync sanity lint units contract integration reliability molecule bench build clean

## make test: everything (sanity, lint, units, the contract tests, integration, molecule, reliability) on kube-apiserver
## (TEST_API=stand-in: all on the embedded stand-in, no Go build)
test: bootstrap sanity lint units contract integration molecule reliability

## make demo: the main job end to end, driven by the operator stand-in (DEMO_ARGS=--json for a JSON report;
## DEMO_API=kube-apiserver to run it on the real control plane instead of the embedded API stand-in;
## DEMO_KUBECONFIG=<path> to run its Kubernetes part on that cluster: an exported KUBECONFIG is never used)
demo:
	CLOUDKIT_SKIP_K8S_BUILD=$(call skip_build,$(DEMO_API)) $(ROOT)/tools/bootstrap.sh
	CLOUDKIT_TEST_API=$(DEMO_API) DEMO_KUBECONFIG=$(DEMO_KUBECONFIG) $(ROOT)/tools/demo.sh $(DEMO_ARGS)

bootstrap:
	CLOUDKIT_SKIP_K8S_BUILD=$(call skip_build,$(TEST_API)) $(ROOT)/tools/bootstrap.sh

sync:
	$(ROOT)/tools/sync-collection.sh

sanity: sync
	cd $(COLLECTION_COPY) && $(BIN)/ansible-test sanity --python $(PY_VERSION) --color no

lint: sync
	$(BIN)/ruff check $(ROOT)
	$(BIN)/ansible-lint --profile production
	$(BIN)/antsibull-changelog lint

units: sync
	cd $(COLLECTION_COPY) && $(BIN)/ansible-test units --python $(PY_VERSION) --color no

## make contract: the stand-ins' contract suite on TEST_API, then (when that is kube-apiserver) on the embedded stand-in
contract:
	CLOUDKIT_TEST_API=$(TEST_API) $(BIN)/python -m pytest tests/contract
	$(if $(filter stand-in,$(TEST_API)),,CLOUDKIT_TEST_API=stand-in $(BIN)/python -m pytest tests/contract)

integration: sync
	CLOUDKIT_TEST_API=$(TEST_API) $(BIN)/python -m pytest tests/integration

## make reliability: 10 lifecycles under API faults and 40 randomized interleavings through the whole stack
## (CLOUDKIT_FAULT_LIFECYCLES and CLOUDKIT_INTERLEAVINGS raise them for long runs)
reliability: sync
	CLOUDKIT_TEST_API=$(TEST_API) $(BIN)/python -m pytest tests/reliability

molecule: sync
	CLOUDKIT_TEST_API=$(TEST_API) $(BIN)/molecule test --all

## make bench: benchmarks; they print figures, ratios and targets, they never fail on timing (bench/README.md)
bench: bootstrap
	$(BIN)/python bench/kubeapi_bench.py
	$(BIN)/python bench/playbook_cost.py
	$(BIN)/python bench/event_source_bench.py
	$(BIN)/python bench/scale_bench.py

build:
	$(BIN)/ansible-galaxy collection build --force --output-path $(ROOT)/.build/dist

clean:
	rm -rf $(ROOT)/.build/ansible_collections/cloudkit $(ROOT)/.build/dist tests/output .pytest_cache
