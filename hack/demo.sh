#!/usr/bin/env bash
# The cluster demo (`make demo`): a local two-node Kubernetes (test/cluster: the host, and node2 in network
# namespaces of its own), xdpgen installed with the project's manifests (config/local on top of config/default), a
# veth pair from the first node into a network namespace standing in for a remote host,
# config/samples/trafficgen.yaml aimed at that host and kept on the first node (node2 has no way to that host),
# `kubectl get tg` live until the run ends, the final status beside the packets counted on the far side, and
# everything torn down on exit, also on failure or Ctrl-C.
#
#   hack/demo.sh path/to/xdpgen-cluster path/to/xdpgen
#
# Environment (set by the Makefile): K8S_BIN, CLUSTER_DIR, IMAGE_TAR, PAUSE_TAR.
set -euo pipefail

cluster=${1:?usage: demo.sh path/to/xdpgen-cluster path/to/xdpgen}
xdpgen=${2:?usage: demo.sh path/to/xdpgen-cluster path/to/xdpgen}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${K8S_BIN:?}" "${CLUSTER_DIR:?}" "${IMAGE_TAR:?}" "${PAUSE_TAR:?}"
[ "$(id -u)" = 0 ] || { echo "demo: needs root (a kubelet, containers, network namespaces and BPF)" >&2; exit 1; }

# The "remote host": a namespace behind a veth pair, on a /24 of its own. The sample's destination is set to it.
# The namespace is a file of the demo's own (not `ip netns add`, whose bind mount of /run/netns over itself would
# hide the namespaces others have there, and stay).
ns=xdpgen-demo-far
node_if=xdpgen-demo0 far_if=eth0
node_ip=10.250.0.1 far_ip=10.250.0.2
sample=$root/config/samples/trafficgen.yaml
tg=udp-sample namespace=xdpgen-system
kubectl=("$K8S_BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" -n "$namespace")

counter= watcher=
tmp=$(mktemp -d)
far_ns=$tmp/$ns
in_far() { nsenter --net="$far_ns" "$@"; }
cleanup() {
	local rc=$?
	trap '' INT TERM
	[ -n "$watcher" ] && kill "$watcher" 2>/dev/null
	[ -n "$counter" ] && kill -INT "$counter" 2>/dev/null && wait "$counter" 2>/dev/null
	echo
	echo "== tearing down: the veth pair and the namespace, then the cluster (pods first)"
	ip link del "$node_if" 2>/dev/null || true
	umount "$far_ns" 2>/dev/null || true
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
echo "== a veth pair from the node ($node_if, $node_ip) into namespace $ns ($far_if, $far_ip), the remote host"
touch "$far_ns"
unshare --net="$far_ns" true
# Made inside the namespace, the node's end moved out to this shell's namespace: ip knows namespaces by name or PID.
in_far ip link add "$far_if" type veth peer name "$node_if" netns $$
ip addr add "$node_ip/24" dev "$node_if"
in_far ip addr add "$far_ip/24" dev "$far_if"
ip link set "$node_if" up
in_far ip link set "$far_if" up
in_far ip link set lo up

# The sample's destination port range, so that the far side counts exactly what the sample sends.
port=$("${kubectl[@]}" create --dry-run=client -o jsonpath='{.spec.destination.port}' -f "$sample")
ports=$("${kubectl[@]}" create --dry-run=client -o jsonpath='{.spec.destination.portCount}' -f "$sample")
port=${port:-9} ports=${ports:-1}
echo "== the remote host counts UDP to ports $port..$((port + ports - 1)) with an XDP program on $far_if"
nsenter --net="$far_ns" "$xdpgen" count "$far_if" -p "$port" -d "$ports" -I 3600 >"$tmp/count" 2>&1 &
counter=$!
sleep 1

echo
echo "== kubectl apply: $sample, destination set to $far_ip, on node $node1 only"
"${kubectl[@]}" patch --local -f "$sample" --type merge -o yaml \
	-p "{\"spec\":{\"destination\":{\"address\":\"$far_ip\"},\"nodeSelector\":{\"kubernetes.io/hostname\":\"$node1\"}}}" \
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
status_packets=$("${kubectl[@]}" get tg "$tg" -o jsonpath='{.status.totals.packets}')
status_bytes=$("${kubectl[@]}" get tg "$tg" -o jsonpath='{.status.totals.bytes}')

kill -INT "$counter"
wait "$counter" || true
counter=
far=$(awk '/^total/ { for (i = 1; i < NF; i++) if ($(i + 1) == "pkts") { print $i; exit } }' "$tmp/count")
echo
echo "== sent (TrafficGenerator status) beside received (counted in $ns)"
printf '  status.totals.packets  %12s   (%s bytes)\n' "${status_packets:-0}" "${status_bytes:-0}"
printf '  counted on %-10s  %12s\n' "$far_if" "${far:-?}"
if [[ $phase != Completed ]]; then
	echo "demo: the run ended in phase '${phase:-none}':" >&2
	"${kubectl[@]}" describe tg "$tg" >&2
	exit 1
fi
if [[ ${far:-x} != "${status_packets:-y}" ]]; then
	echo "demo: the far side counted ${far:-nothing}, the status says ${status_packets:-nothing}" >&2
	exit 1
fi
echo "  every packet in the status arrived."
