#!/usr/bin/env bash
# Build (once) the local control plane: kube-apiserver and etcd from published Go modules.
#
# Prints, as its last line on stdout, the folder holding `kube-apiserver` and `etcd`
# (the KUBEBUILDER_ASSETS convention of controller-runtime's envtest).
#
# - KUBEBUILDER_ASSETS set and holding both binaries: used as is, nothing is built.
# - Otherwise binaries are built into .cache/control-plane/<versions>/ (git-ignored),
#   and the build is skipped when both are already there.
set -euo pipefail

K8S_VERSION="v1.36.3"
ETCD_VERSION="v3.6.16"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
    if [[ -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
        echo "control plane: using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS" >&2
        echo "$KUBEBUILDER_ASSETS"
        exit 0
    fi
    echo "error: KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS does not hold executable kube-apiserver and etcd" >&2
    exit 1
fi

out="${CONTROL_PLANE_CACHE:-$root/.cache/control-plane}/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
if [[ -x "$out/kube-apiserver" && -x "$out/etcd" ]]; then
    echo "control plane: cached in $out" >&2
    echo "$out"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    cat >&2 <<MSG
error: Go is not installed, and no control-plane binaries were found.
  Either install Go 1.26+ (the build then takes ~4 min on 2 cores, once), or point
  KUBEBUILDER_ASSETS at a folder holding kube-apiserver ($K8S_VERSION) and etcd ($ETCD_VERSION),
  e.g. one from controller-runtime's setup-envtest.
MSG
    exit 1
fi

mkdir -p "$out"
tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false"
start=$SECONDS

echo "control plane: building etcd $ETCD_VERSION ..." >&2
(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" .)

major="${K8S_VERSION#v}"; major="${major%%.*}"
minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
vpkg="k8s.io/component-base/version"
ldflags="-s -w -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor"
ldflags+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
echo "control plane: building kube-apiserver $K8S_VERSION (about 4 min on 2 cores the first time) ..." >&2
(cd "$here/kube-apiserver" && go build -trimpath -ldflags "$ldflags" -o "$tmp/kube-apiserver" .)

mv "$tmp/etcd" "$tmp/kube-apiserver" "$out/"
echo "control plane: built in $((SECONDS - start)) s into $out" >&2
"$out/kube-apiserver" --version >&2
echo "$out"
