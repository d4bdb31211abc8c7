#!/usr/bin/env bash
# The standalone demo: a veth pair from a "sender" namespace into a "receiver" namespace standing in for a
# remote host; `xdpgen receive` counts what arrives there while `xdpgen udp` sends live frames for a few seconds.
# Everything it creates is removed on exit, also on failure or Ctrl-C.
set -euo pipefail

xdpgen=${1:?usage: demo-cli.sh path/to/xdpgen}
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces and BPF)" >&2; exit 1; }

id=$$
tx=xdpgen-demo-tx-$id rx=xdpgen-demo-rx-$id
counter=
cleanup() {
	[ -n "$counter" ] && kill "$counter" 2>/dev/null && wait "$counter" 2>/dev/null
	ip netns del "$tx" 2>/dev/null || true
	ip netns del "$rx" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add "$tx"
ip netns add "$rx"
# One RX queue per sender thread on the receiving side: a veth hands each sender CPU's frames to its own queue.
ip -n "$tx" link add veth-tx numtxqueues 2 numrxqueues 2 type veth peer name veth-rx numtxqueues 2 numrxqueues 2 netns "$rx"
ip -n "$tx" addr add 10.250.0.1/24 dev veth-tx
ip -n "$rx" addr add 10.250.0.2/24 dev veth-rx
ip -n "$tx" link set veth-tx up
ip -n "$rx" link set veth-rx up

echo "== probe before the receiver is ready: xdpgen says why a veth cannot send yet"
ip netns exec "$tx" "$xdpgen" probe veth-tx || true
echo
echo "== receiver: counting UDP to ports 9-108 on veth-rx (its XDP program also lets the veth take redirected frames)"
ip netns exec "$rx" "$xdpgen" receive veth-rx -p 9 -d 100 -I 10 >"${TMPDIR:-/tmp}/xdpgen-demo-$id.rx" &
counter=$!
sleep 1
echo "== probe again"
ip netns exec "$tx" "$xdpgen" probe veth-tx
echo
echo "== sender: 3 seconds of UDP sprayed over 100 destination ports, 2 threads"
ip netns exec "$tx" "$xdpgen" udp veth-tx -a 10.250.0.2 -d 100 -t "$(nproc | awk '{print ($1 > 1) ? 2 : 1}')" --duration 3s
sleep 0.5
kill -INT "$counter"
wait "$counter" || true
counter=
echo
echo "== receiver's count"
tail -n 1 "${TMPDIR:-/tmp}/xdpgen-demo-$id.rx"
rm -f "${TMPDIR:-/tmp}/xdpgen-demo-$id.rx"
