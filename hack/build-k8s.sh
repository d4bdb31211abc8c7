#!/usr/bin/env bash
# Builds etcd and the Kubernetes binaries from the Go module proxy into a version-keyed folder, skipping every binary
# that is already there. Nothing is downloaded but Go modules: no release tarballs, no envtest downloads.
#
#   hack/build-k8s.sh [binary...]    (default: all of them)
#
# The versions are pinned by hack/etcd/go.mod and hack/kube/go.mod; K8S_VERSION (test/k8sversion's Version, read by
# the Makefile) and ETCD_VERSION (set by the Makefile) must match them, so a folder named after one version never holds another. Binaries are cached by that
# version only: after editing a wrapper's main.go without a version bump, delete the folder to rebuild.
#
# Environment: K8S_VERSION (test/k8sversion), ETCD_VERSION (v3.7.3), K8S_BIN (bin/k8s/$K8S_VERSION).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
K8S_VERSION=${K8S_VERSION:-$(sed -n 's/^const Version = "\(v[0-9.]*\)"$/\1/p' "$root/test/k8sversion/k8sversion.go")}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
K8S_BIN=${K8S_BIN:-$root/bin/k8s/$K8S_VERSION}
GO=${GO:-go}

all=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
wanted=("$@")
if ((${#wanted[@]} == 0)); then
	wanted=("${all[@]}")
fi

die() {
	echo "build-k8s: $*" >&2
	exit 1
}

# pinned <go.mod> <module>: the version <module> is required at in <go.mod>.
pinned() {
	awk -v m="$2" '($1 == m && $2 ~ /^v/) { print $2 } ($1 == "require" && $2 == m) { print $3 }' "$1"
}

check_pin() {
	local gomod=$1 module=$2 want=$3 got
	got=$(pinned "$gomod" "$module")
	[[ $got == "$want" ]] || die "$gomod pins $module at '${got}', the Makefile says $want: bump both together"
}

missing=()
for name in "${wanted[@]}"; do
	case " ${all[*]} " in
	*" $name "*) ;;
	*) die "unknown binary '$name'; known: ${all[*]}" ;;
	esac
	version=$K8S_VERSION
	[[ $name != etcd ]] || version=$ETCD_VERSION
	# The folder is keyed by the Kubernetes version only, so etcd (which envtest wants next to kube-apiserver) must
	# also be asked for its version: an ETCD_VERSION bump alone has to rebuild it.
	if [[ -x $K8S_BIN/$name ]] &&
		{ [[ $name != etcd ]] || "$K8S_BIN/etcd" --version 2>/dev/null | grep -qx "etcd Version: ${ETCD_VERSION#v}"; }; then
		echo "build-k8s: $name $version already in $K8S_BIN, skipping"
	else
		missing+=("$name")
	fi
done
((${#missing[@]} > 0)) || exit 0

check_pin "$root/hack/etcd/go.mod" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
check_pin "$root/hack/kube/go.mod" k8s.io/kubernetes "$K8S_VERSION"

# As the upstream release build (kubernetes hack/lib/golang.sh): the version stamped into both version packages
# (without it the binaries say v0.0.0-master and kubectl warns about skew), no symbols, trimmed paths, and the
# selinux/notest/grpcnotrace tags. CGO_ENABLED=0 gives static binaries for every one of them, kubelet included:
# upstream leaves kubelet out of its static list, but with cgo on, the only cgo packages in its build are the
# standard library's net and os/user, whose pure-Go versions (DNS resolver, /etc/passwd lookup) serve it here.
major=${K8S_VERSION#v}
major=${major%%.*}
minor=${K8S_VERSION#v*.}
minor=${minor%%.*}
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	kube_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
	kube_ldflags+=" -X $pkg.gitTreeState=clean"
done

mkdir -p "$K8S_BIN"
# The wrapper modules stand alone: a go.work someone puts in the repository must not change what they build.
export CGO_ENABLED=0 GOWORK=off

for name in "${missing[@]}"; do
	if [[ $name == etcd ]]; then
		dir=$root/hack/etcd pkg=. version=$ETCD_VERSION ldflags="-s -w" tags=""
	else
		dir=$root/hack/kube pkg=./cmd/$name version=$K8S_VERSION ldflags=$kube_ldflags tags="selinux,notest,grpcnotrace"
	fi
	echo "build-k8s: building $name $version into $K8S_BIN"
	echo "build-k8s:   (the first build is slow: ~8-10 min for kube-apiserver on 2 cores, ~1-2 min for etcd;"
	echo "build-k8s:    later ones reuse the Go build cache)"
	start=$SECONDS
	# Build to a temporary name and rename, so an interrupted build never leaves a binary that would be skipped.
	(cd "$dir" && "$GO" build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$K8S_BIN/.$name.tmp" "$pkg")
	mv "$K8S_BIN/.$name.tmp" "$K8S_BIN/$name"
	echo "build-k8s: built $name in $((SECONDS - start)) s"
done
