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

.PHONY: test demo bootstrap sync sanity lint units contract integration reliability molecule bench build clean

## make test: everything (sanity, lint, units, the stand-in's contract tests, integration, molecule, reliability)
test: bootstrap sanity lint units contract integration molecule reliability

## make demo: the main job end to end, driven by the operator stand-in (DEMO_ARGS=--json for a JSON report)
demo: bootstrap
	$(ROOT)/tools/demo.sh $(DEMO_ARGS)

bootstrap:
	$(ROOT)/tools/bootstrap.sh

sync:
	$(ROOT)/tools/sync-collection.sh

sanity: sync
	cd $(COLLECTION_COPY) && $(BIN)/ansible-test sanity --python $(PY_VERSION) --color no

lint: sync
	$(BIN)/ansible-lint --profile production

units: sync
	cd $(COLLECTION_COPY) && $(BIN)/ansible-test units --python $(PY_VERSION) --color no

contract:
	$(BIN)/python -m pytest tests/contract

integration: sync
	$(BIN)/python -m pytest tests/integration

## make reliability: faults and 200 randomized interleavings through the whole stack (CLOUDKIT_INTERLEAVINGS to change the count)
reliability: sync
	$(BIN)/python -m pytest tests/reliability

molecule: sync
	$(BIN)/molecule test --all

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
