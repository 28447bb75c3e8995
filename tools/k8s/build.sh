#!/usr/bin/env bash
# Build the Kubernetes control plane the tests run on: kube-apiserver and kube-controller-manager from the
# k8s.io/kubernetes Go module (tools/k8s/kubernetes/go.mod) and etcd from go.etcd.io/etcd/server/v3
# (tools/k8s/etcd/go.mod), into .build/k8s/bin. Idempotent: nothing is built when the binaries are there,
# report the pinned versions, and the modules, this script and the Go version are those of the last build
# (.build/k8s/stamp). Go's module and build caches (go env GOMODCACHE GOCACHE) make a rebuild take seconds.
#
# Usage: tools/k8s/build.sh [--check]   (--check: exit 0 when up to date, 1 otherwise; builds nothing)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${CLOUDKIT_K8S_DIR:-$root/.build/k8s}
bin=$out/bin

K8S_VERSION=v1.33.13     # OpenShift 4.20 ships Kubernetes 1.33; the newest 1.33 patch the Go module proxy serves
ETCD_VERSION=3.5.21      # the etcd that Kubernetes v1.33.13 pins (its go.mod and build/dependencies.yaml)

log() { printf '[k8s] %s\n' "$*"; }

command -v go >/dev/null 2>&1 || {
  echo "tools/k8s/build.sh: the Go toolchain (go) is not on PATH; install Go >= 1.24 to build the control plane" >&2
  exit 3
}

stamp_value() {
  { cat "$here"/kubernetes/go.mod "$here"/kubernetes/go.sum "$here"/kubernetes/tools.go \
        "$here"/etcd/go.mod "$here"/etcd/go.sum "$here"/etcd/tools.go "$here/build.sh"; go version; } | sha256sum | cut -c1-16
}

versions_ok() {
  [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/etcd" ] || return 1
  [ "$("$bin/kube-apiserver" --version 2>/dev/null)" = "Kubernetes $K8S_VERSION" ] || return 1
  [ "$("$bin/kube-controller-manager" --version 2>/dev/null)" = "Kubernetes $K8S_VERSION" ] || return 1
  "$bin/etcd" --version 2>/dev/null | grep -qx "etcd Version: $ETCD_VERSION" || return 1
}

stamp=$(stamp_value)
if [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ] && versions_ok; then
  [ "${1:-}" = --check ] && exit 0
  log "kube-apiserver, kube-controller-manager $K8S_VERSION and etcd $ETCD_VERSION are built ($bin)"
  exit 0
fi
[ "${1:-}" = --check ] && exit 1

mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
# What `make` in kubernetes/kubernetes stamps into the binaries (hack/lib/version.sh), so --version and /version are right.
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1"
ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor"
etcd_ldflags="-X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION"

build() {  # build <module dir> <package> <output name> <ldflags>
  local started=$SECONDS
  log "building $3 ($2)"
  (cd "$here/$1" && go build -trimpath -ldflags "$4" -o "$bin/$3.new" "$2")
  mv -f "$bin/$3.new" "$bin/$3"
  log "built $3 in $((SECONDS - started)) s"
}

started=$SECONDS
log "downloading modules (first time only: about 900 MB into $(go env GOMODCACHE))"
(cd "$here/kubernetes" && go mod download)
(cd "$here/etcd" && go mod download)
build kubernetes k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$ldflags"
build kubernetes k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager "$ldflags"
build etcd go.etcd.io/etcd/server/v3 etcd "$etcd_ldflags"
versions_ok || { echo "tools/k8s/build.sh: the built binaries do not report $K8S_VERSION / $ETCD_VERSION" >&2; exit 1; }
echo "$stamp" > "$out/stamp"
log "control plane built in $((SECONDS - started)) s into $bin"
