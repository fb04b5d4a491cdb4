#!/usr/bin/env bash
# Build (once) the local control plane into the checkout's .cache/control-plane/:
# kube-apiserver, etcd and kube-controller-manager from published Go modules.
#
# A thin wrapper over `python -m informer.testing.envtest install --dir .cache/control-plane`
# (informer/testing/envtest/): it prints, as its last line on stdout, the folder holding
# the binaries (the KUBEBUILDER_ASSETS convention of controller-runtime's envtest).
#
# - KUBEBUILDER_ASSETS set and holding kube-apiserver and etcd: used as is, nothing built.
# - Otherwise missing binaries are built into .cache/control-plane/<versions>/ (git-ignored,
#   CI caches it), and the build is skipped when all three are already there.
# Arguments are passed on, e.g. `hack/build-control-plane.sh --k8s 1.33`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
if [[ ! -x "$python" ]]; then
    echo "error: $python not found: run \`make install\` first" >&2
    exit 1
fi
exec "$python" -m informer.testing.envtest install --dir "$root/.cache/control-plane" "$@"
