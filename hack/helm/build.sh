#!/usr/bin/env bash
# Builds helm from the Go module proxy into a version-keyed folder, skipping the build when the binary is there, as
# hack/build-k8s.sh does for the Kubernetes binaries. Nothing is downloaded but Go modules.
#
#   hack/helm/build.sh
#
# The version is pinned by hack/helm/go.mod (a `tool` directive on helm.sh/helm/v4/cmd/helm); HELM_VERSION (set by
# the Makefile) must match it, so a folder named after one version never holds another.
#
# Environment: HELM_VERSION (v4.3.1), HELM_BIN (bin/helm/$HELM_VERSION).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
HELM_VERSION=${HELM_VERSION:-v4.3.1}
HELM_BIN=${HELM_BIN:-$root/bin/helm/$HELM_VERSION}
GO=${GO:-go}

die() {
	echo "build-helm: $*" >&2
	exit 1
}

if [[ -x $HELM_BIN/helm ]]; then
	echo "build-helm: helm $HELM_VERSION already in $HELM_BIN, skipping"
	exit 0
fi

got=$(awk '($1 == "helm.sh/helm/v4" && $2 ~ /^v/) { print $2 } ($1 == "require" && $2 == "helm.sh/helm/v4") { print $3 }' "$here/go.mod")
[[ $got == "$HELM_VERSION" ]] || die "hack/helm/go.mod pins helm.sh/helm/v4 at '${got}', the Makefile says $HELM_VERSION: bump both together"

# As upstream's Makefile: static, trimmed, no symbols, and the version stamped in (without it `helm version` says
# v4.3 and charts' kubeVersion checks see the wrong one).
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
mkdir -p "$HELM_BIN"
echo "build-helm: building helm $HELM_VERSION into $HELM_BIN (first time ~3-5 min on 2 cores, later a few seconds)"
start=$SECONDS
# Build to a temporary name and rename, so an interrupted build never leaves a binary that would be skipped.
(cd "$here" && CGO_ENABLED=0 GOWORK=off "$GO" build -trimpath -ldflags "$ldflags" -o "$HELM_BIN/.helm.tmp" helm.sh/helm/v4/cmd/helm)
mv "$HELM_BIN/.helm.tmp" "$HELM_BIN/helm"
echo "build-helm: built helm in $((SECONDS - start)) s"
