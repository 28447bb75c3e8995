#!/usr/bin/env bash
# `make demo`: start the local stack, seed a Tenant and a ComputeInstance as the operator
# would, read them back through Ansible (kubernetes.core), and show what is there.
# DEMO_KEEP=1 leaves the API server running afterwards.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=.venv/bin/python
workdir=.build/demo
mkdir -p "$workdir"
kubeconfig=$root/$workdir/kubeconfig
rm -f "$kubeconfig"

port=$($py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$py -m tests.stack.kubeapi --port "$port" --kubeconfig "$kubeconfig" > "$workdir/kubeapi.log" 2>&1 &
server=$!
stop() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
if [ "${DEMO_KEEP:-0}" != 1 ]; then trap stop EXIT; fi
for _ in $(seq 100); do [ -s "$kubeconfig" ] && break; sleep 0.1; done
[ -s "$kubeconfig" ] || { cat "$workdir/kubeapi.log"; echo "the API server did not start" >&2; exit 1; }
echo "== local Kubernetes API (tests/stack/kubeapi) on 127.0.0.1:$port, kubeconfig $kubeconfig"

echo "== seeding a Tenant and a ComputeInstance, as the cloudkit operator would"
$py -m tests.stack.demo seed --kubeconfig "$kubeconfig"

echo "== what this collection decides for it (cloudkit.provisioning.computeinstance_info)"
K8S_AUTH_KUBECONFIG=$kubeconfig ANSIBLE_COLLECTIONS_PATH=$root/.build \
  .venv/bin/ansible-playbook tests/stack/demo_read.yml

echo "== what is there"
$py -m tests.stack.demo show --kubeconfig "$kubeconfig"
echo
echo "Nothing has been provisioned: no VM exists yet and the instance is not reconciled."
echo "The provisioning playbooks, the EDA and AAP paths come with issues 4-7."
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  echo "API server left running (pid $server): export K8S_AUTH_KUBECONFIG=$kubeconfig"
fi
