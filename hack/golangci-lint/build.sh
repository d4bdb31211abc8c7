#!/usr/bin/env bash
# Builds golangci-lint from the Go module proxy into a version-keyed folder, skipping the build when the binary is
# there, as hack/helm/build.sh does for helm. Nothing is downloaded but Go modules.
#
#   hack/golangci-lint/build.sh
#
# The version is pinned by hack/golangci-lint/go.mod (a `tool` directive on its cmd/golangci-lint); GOLANGCI_LINT_VERSION
# (set by the Makefile) must match it, so a folder named after one version never holds another.
#
# Environment: GOLANGCI_LINT_VERSION (v2.15.0), GOLANGCI_LINT_BIN (bin/golangci-lint/$GOLANGCI_LINT_VERSION).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
GOLANGCI_LINT_BIN=${GOLANGCI_LINT_BIN:-$root/bin/golangci-lint/$GOLANGCI_LINT_VERSION}
GO=${GO:-go}
module=github.com/golangci/golangci-lint/v2

die() {
	echo "build-golangci-lint: $*" >&2
	exit 1
}

if [[ -x $GOLANGCI_LINT_BIN/golangci-lint ]]; then
	echo "build-golangci-lint: golangci-lint $GOLANGCI_LINT_VERSION already in $GOLANGCI_LINT_BIN, skipping"
	exit 0
fi

got=$(awk -v m="$module" '($1 == m && $2 ~ /^v/) { print $2 } ($1 == "require" && $2 == m) { print $3 }' "$here/go.mod")
[[ $got == "$GOLANGCI_LINT_VERSION" ]] ||
	die "hack/golangci-lint/go.mod pins $module at '${got}', the Makefile says $GOLANGCI_LINT_VERSION: bump both together"

# As upstream's release build: the version stamped in, so `golangci-lint version` names the one we pinned.
ldflags="-s -w -X main.version=${GOLANGCI_LINT_VERSION#v}"
mkdir -p "$GOLANGCI_LINT_BIN"
echo "build-golangci-lint: building golangci-lint $GOLANGCI_LINT_VERSION into $GOLANGCI_LINT_BIN (first time ~3-5 min on 2 cores)"
start=$SECONDS
# Build to a temporary name and rename, so an interrupted build never leaves a binary that would be skipped.
(cd "$here" && CGO_ENABLED=0 GOWORK=off "$GO" build -trimpath -ldflags "$ldflags" \
	-o "$GOLANGCI_LINT_BIN/.golangci-lint.tmp" "$module/cmd/golangci-lint")
mv "$GOLANGCI_LINT_BIN/.golangci-lint.tmp" "$GOLANGCI_LINT_BIN/golangci-lint"
echo "build-golangci-lint: built golangci-lint in $((SECONDS - start)) s"
