#!/usr/bin/env bash
# The cluster demo (`make demo`): a local two-node Kubernetes (test/cluster: the host, and node2 in network
# namespaces of its own), xdpgen installed with the project's manifests (config/local on top of config/default),
# config/samples/trafficgen_receivers.yaml sending from the first node to node2, which is the run's receiver: it
# counts what arrives per sender and sends latency samples back. `kubectl get tg` live until the run ends, then
# the final status, the path matrix (kubectl xdpgen results) and sent beside received; everything torn down on
# exit, also on failure or Ctrl-C.
#
#   hack/demo.sh path/to/xdpgen-cluster path/to/kubectl-xdpgen
#
# Environment (set by the Makefile): K8S_BIN, CLUSTER_DIR, IMAGE_TAR, PAUSE_TAR.
set -euo pipefail

cluster=${1:?usage: demo.sh path/to/xdpgen-cluster path/to/kubectl-xdpgen}
plugin=${2:?usage: demo.sh path/to/xdpgen-cluster path/to/kubectl-xdpgen}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${K8S_BIN:?}" "${CLUSTER_DIR:?}" "${IMAGE_TAR:?}" "${PAUSE_TAR:?}"
[ "$(id -u)" = 0 ] || { echo "demo: needs root (a kubelet, containers, network namespaces and BPF)" >&2; exit 1; }

sample=$root/config/samples/trafficgen_receivers.yaml
tg=mesh namespace=xdpgen-system
kubectl=("$K8S_BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" -n "$namespace")

watcher=
tmp=$(mktemp -d)
cleanup() {
	local rc=$?
	trap '' INT TERM
	[ -n "$watcher" ] && kill "$watcher" 2>/dev/null
	echo
	echo "== tearing down the cluster (pods first)"
	"$cluster" down --dir "$CLUSTER_DIR" || rc=1
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting a two-node Kubernetes (etcd, kube-apiserver, kube-controller-manager, kube-scheduler; a kubelet and a containerd per node)"
"$cluster" up --dir "$CLUSTER_DIR" --bin-dir "$K8S_BIN" --image "$IMAGE_TAR" --image "$PAUSE_TAR" >/dev/null
"$K8S_BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" get nodes -o wide
# The first node is the host, named as the harness names it by default.
node1=$(hostname | tr '[:upper:]' '[:lower:]')

echo
echo "== installing xdpgen: kubectl apply -k config/local"
# The TrafficGeneratorPolicy comes with its CRD: kubectl maps it once the CRD is established.
install() { "$K8S_BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" apply -k "$root/config/local" >/dev/null; }
install 2>/dev/null || { "$K8S_BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" wait --for=condition=Established \
	--timeout=60s crd/trafficgeneratorpolicies.xdpgen.io >/dev/null && install; }
"${kubectl[@]}" rollout status deployment/xdpgen-controller-manager --timeout=120s

echo
echo "== kubectl apply: $sample, from $node1 to node2, which receives: it counts what arrives, per sender"
"${kubectl[@]}" patch --local -f "$sample" --type merge -o yaml \
	-p "{\"spec\":{\"nodeSelector\":{\"xdpgen.io/load-test\":null,\"kubernetes.io/hostname\":\"$node1\"},\"receivers\":{\"nodeSelector\":{\"xdpgen.io/load-test\":null,\"kubernetes.io/hostname\":\"node2\"}},\"duration\":\"20s\"}}" \
	>"$tmp/trafficgen.yaml"
"${kubectl[@]}" apply -f "$tmp/trafficgen.yaml"
echo
"${kubectl[@]}" get tg "$tg" -o wide --watch &
watcher=$!

deadline=$((SECONDS + 240))
phase=
while ((SECONDS < deadline)); do
	phase=$("${kubectl[@]}" get tg "$tg" -o jsonpath='{.status.phase}' 2>/dev/null || true)
	[[ $phase == Completed || $phase == Failed ]] && break
	sleep 1
done
sleep 1
kill "$watcher" 2>/dev/null || true
wait "$watcher" 2>/dev/null || true
watcher=

echo
echo "== final status"
"${kubectl[@]}" get tg "$tg" -o wide
"${kubectl[@]}" get tgnr -o wide
echo
echo "== what arrived, path by path: kubectl xdpgen results $tg"
PATH=$(dirname "$plugin"):$PATH KUBECONFIG=$CLUSTER_DIR/kubeconfig "$K8S_BIN/kubectl" xdpgen results "$tg" -n "$namespace"
sent=$("${kubectl[@]}" get tg "$tg" -o jsonpath='{.status.totals.packets}')
received=$("${kubectl[@]}" get tg "$tg" -o jsonpath='{.status.totals.receivedPackets}')
lost=$("${kubectl[@]}" get tg "$tg" -o jsonpath='{.status.totals.lostPackets}')
echo
printf '  sent (status.totals.packets)              %12s\n' "${sent:-0}"
printf '  received (status.totals.receivedPackets)  %12s   counted by node2'"'"'s receiver\n' "${received:-0}"
printf '  lost (status.totals.lostPackets)          %12s\n' "${lost:-0}"
if [[ $phase != Completed ]]; then
	echo "demo: the run ended in phase '${phase:-none}':" >&2
	"${kubectl[@]}" describe tg "$tg" >&2
	exit 1
fi
if [[ ${sent:-x} != "${received:-y}" || ${lost:-0} != 0 ]]; then
	echo "demo: node2 received ${received:-nothing} of the ${sent:-?} packets sent (${lost:-?} lost)" >&2
	exit 1
fi
echo "  every packet sent arrived."
