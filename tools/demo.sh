#!/usr/bin/env bash
# `make demo`: the main job end to end, driven by the operator stand-in (tests/stack/scenarios.py).
# Starts the API, KubeVirt and AAP controller stand-ins and ansible-rulebook on the webhook rulebook, then
# creates, changes and deletes ComputeInstances through EDA and AAP Direct and prints a summary table.
# Arguments go to the scenario: --json (a JSON report on stdout), --ready-delay S, --timeout S, --work-dir D.
# With DEMO_KUBECONFIG set (and only then: an exported KUBECONFIG is ignored), the Kubernetes part runs on that cluster.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export ANSIBLE_COLLECTIONS_PATH=$root/.build ANSIBLE_HOME=$root/.ansible ANSIBLE_NOCOLOR=1
export PATH=$root/.venv/bin:$PATH
"$root/tools/sync-collection.sh" >/dev/null
exec "$root/.venv/bin/python" -m tests.stack.scenarios "$@"
