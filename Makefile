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

.PHONY: test demo bootstrap sync sanity lint units contract integration molecule bench build clean

## make test: everything (sanity, lint, units, the stand-in's contract tests, integration)
test: bootstrap sanity lint units contract integration molecule

## make demo: the local stack with a Tenant and a sample ComputeInstance
demo: bootstrap
	$(ROOT)/tools/demo.sh

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

molecule: sync
	$(BIN)/molecule test --all

## make bench: benchmarks; they print figures and ratios, they never fail on timing
bench: bootstrap
	$(BIN)/python bench/kubeapi_bench.py

build:
	$(BIN)/ansible-galaxy collection build --force --output-path $(ROOT)/.build/dist

clean:
	rm -rf $(ROOT)/.build/ansible_collections/cloudkit $(ROOT)/.build/dist tests/output .pytest_cache
