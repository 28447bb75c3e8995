#!/usr/bin/env bash
# Bootstrap everything `make test` and `make demo` need, idempotently.
# Offline-capable after the first run: each step checks a stamp or the installed thing first.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

PYTHON=${PYTHON:-python3}
ANSIBLE_WHEEL_VERSION=12.3.0          # carries kubernetes.core 6.2.0, kubevirt.core 2.2.3, awx.awx 24.6.1
DEPENDENCY_COLLECTIONS="kubernetes/core kubevirt/core awx/awx"
ANSIBLE_TEST_PIP_VERSION=24.2         # the pip that ansible-test bootstraps into its sanity venvs

venv=.venv
build=.build
collections=$build/ansible_collections
wheels=.cache/wheels

log() { printf '[bootstrap] %s\n' "$*"; }

# 1. Python virtual environment with pinned versions.
requirements_hash=$(cat requirements-dev.txt constraints-dev.txt | sha256sum | cut -c1-16)
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$requirements_hash" ]; then
  log "creating $venv (pinned requirements)"
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints-dev.txt
  echo "$requirements_hash" > "$venv/.installed"
fi

# 2. System packages: Java for ansible-rulebook (its rule engine, drools, runs on the JVM)
#    and shellcheck, which ansible-test sanity skips without.
missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${missing[*]} (apt-get install needs root)" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 3. Dependency collections, unpacked from the `ansible` wheel (Galaxy is not reachable).
deps_stamp="$collections/.dependencies-$ANSIBLE_WHEEL_VERSION"
if [ ! -f "$deps_stamp" ]; then
  wheel="$wheels/ansible-$ANSIBLE_WHEEL_VERSION-py3-none-any.whl"
  if [ ! -f "$wheel" ]; then
    log "downloading the ansible $ANSIBLE_WHEEL_VERSION wheel for its collections"
    mkdir -p "$wheels"
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
      "ansible==$ANSIBLE_WHEEL_VERSION" -d "$wheels"
  fi
  log "unpacking $DEPENDENCY_COLLECTIONS"
  patterns=()
  for c in $DEPENDENCY_COLLECTIONS; do
    rm -rf "${collections:?}/$c"
    patterns+=("ansible_collections/$c/*")
  done
  mkdir -p "$build"
  unzip -q -o "$wheel" "${patterns[@]}" -d "$build"
  rm -f "$collections"/.dependencies-*
  touch "$deps_stamp"
fi

# 4. ansible-test sanity bootstraps pip from a download; offline, a stand-in does the same
#    with ensurepip and the machine's own pip configuration (index, CA bundle).
get_pip="$HOME/.ansible/test/cache/get_pip_${ANSIBLE_TEST_PIP_VERSION//./_}.py"
if true; then  # rewritten every run: cheap, and stays current with this script
  mkdir -p "$(dirname "$get_pip")"
  cat > "$get_pip" <<'PY'
"""cloudkit-get-pip: offline stand-in for get-pip.py used by ansible-test."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + args)
PY
fi

# 5. This collection beside its dependencies, where ansible-test and ansible look for it.
"$root/tools/sync-collection.sh"

# 6. The Kubernetes control plane `make test` runs on (kube-apiserver, kube-controller-manager, etcd), built from
#    their Go modules into .build/k8s/bin (tools/k8s/build.sh: seconds when already built or Go's caches are warm,
#    about 7 minutes the first time on 2 CPUs). CLOUDKIT_SKIP_K8S_BUILD=1 skips it (`make demo` on the stand-in).
if [ "${CLOUDKIT_SKIP_K8S_BUILD:-}" != 1 ]; then
  nice -n 10 "$root/tools/k8s/build.sh"
fi
