#!/usr/bin/env bash
# Proves that .golangci.yml's depguard rules hold the import boundaries: in a throwaway module with this repository's
# module path, go.mod and lint configuration, it puts one import across each boundary (and, beside them, imports
# each rule allows) and expects golangci-lint to fail with exactly those violations. The repository is not touched.
#
#   hack/golangci-lint/check-boundaries.sh <golangci-lint binary>
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
lint=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") # absolute: the lint runs in another folder

die() {
	echo "check-boundaries: $*" >&2
	exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/go.mod" "$root/go.sum" "$root/.golangci.yml" "$work/"

# probe <dir> <package> <import...>: a file in <dir> that imports each of <import...>.
probe() {
	local dir=$1 pkg=$2 file=$1/$3
	shift 3
	mkdir -p "$work/$dir"
	{
		echo "package $pkg"
		echo
		for imp in "$@"; do echo "import _ \"$imp\""; done
	} >"$work/$file"
}

probe agent/dataplane dataplane violation.go k8s.io/apimachinery/pkg/types sigs.k8s.io/yaml
probe agent/dataplane dataplane allowed.go net github.com/cilium/ebpf
probe bpf bpf violation.go k8s.io/client-go/rest
probe controllers controllers violation.go github.com/cilium/ebpf github.com/xdpgen/xdpgen/agent/dataplane \
	github.com/xdpgen/xdpgen/bpf
probe controllers controllers allowed.go k8s.io/client-go/rest sigs.k8s.io/controller-runtime/pkg/client
probe cmd/kubectl-xdpgen/app app violation.go github.com/cilium/ebpf github.com/xdpgen/xdpgen/agent/dataplane \
	github.com/xdpgen/xdpgen/bpf
probe cmd/kubectl-xdpgen/app app allowed.go k8s.io/cli-runtime/pkg/genericclioptions \
	sigs.k8s.io/controller-runtime/pkg/client github.com/xdpgen/xdpgen/api/v1alpha1
probe api/v1alpha1 v1alpha1 violation.go sigs.k8s.io/controller-runtime/pkg/scheme k8s.io/api/apps/v1
probe api/v1alpha1 v1alpha1 allowed.go strings k8s.io/apimachinery/pkg/runtime k8s.io/api/core/v1
probe internal/search search violation.go github.com/cilium/ebpf k8s.io/apimachinery/pkg/types
probe internal/search search allowed.go context time

# Every import of a violation.go, by file and the rule that must name it.
want=(
	"agent/dataplane/violation.go k8s.io/apimachinery/pkg/types dataplane-without-kubernetes"
	"agent/dataplane/violation.go sigs.k8s.io/yaml dataplane-without-kubernetes"
	"bpf/violation.go k8s.io/client-go/rest dataplane-without-kubernetes"
	"controllers/violation.go github.com/cilium/ebpf controllers-without-ebpf"
	"controllers/violation.go github.com/xdpgen/xdpgen/agent/dataplane controllers-without-ebpf"
	"controllers/violation.go github.com/xdpgen/xdpgen/bpf controllers-without-ebpf"
	"cmd/kubectl-xdpgen/app/violation.go github.com/cilium/ebpf kubectl-plugin-without-ebpf"
	"cmd/kubectl-xdpgen/app/violation.go github.com/xdpgen/xdpgen/agent/dataplane kubectl-plugin-without-ebpf"
	"cmd/kubectl-xdpgen/app/violation.go github.com/xdpgen/xdpgen/bpf kubectl-plugin-without-ebpf"
	"api/v1alpha1/violation.go sigs.k8s.io/controller-runtime/pkg/scheme api-types-only"
	"api/v1alpha1/violation.go k8s.io/api/apps/v1 api-types-only"
	"internal/search/violation.go github.com/cilium/ebpf search-pure"
	"internal/search/violation.go k8s.io/apimachinery/pkg/types search-pure"
)

status=0
out=$(cd "$work" && GOWORK=off "$lint" run --enable-only depguard ./... 2>&1) ||
	status=$?
((status != 0)) || die "golangci-lint passed imports across the boundaries:"$'\n'"$out"
findings=$(grep -c '(depguard)$' <<<"$out" || true)
for w in "${want[@]}"; do
	read -r file pkg rule <<<"$w"
	grep -q "^$file:.*import '$pkg' is not allowed from list '$rule'" <<<"$out" ||
		die "no depguard finding for $pkg in $file (rule $rule); golangci-lint said:"$'\n'"$out"
done
((findings == ${#want[@]})) ||
	die "$findings depguard findings, want ${#want[@]} (an allowed import was flagged?):"$'\n'"$out"
echo "check-boundaries: golangci-lint refuses each of the ${#want[@]} imports across the boundaries and allows the rest"
