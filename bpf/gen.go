// Package bpf holds xdpgen's XDP programs, compiled ahead of time so that building needs no clang.
// `make generate-bpf` rebuilds the committed objects; `make verify-bpf` fails when they drift from the C.
package bpf

//go:generate go tool bpf2go -tags linux -target bpfel -type worker_state -type counter udp udp.c -- -I./include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel -type counter -type rx_cpu -type rx_stream_key -type rx_stream -type rx_slot -type rx_stream_count -type latency_key -type latency_hist receive receive.c -- -I./include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel -type tcp_flow -type tcp_flow_ctl -type tcp_worker -type counter tcp tcp.c -- -I./include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel -type replay_frame -type replay_chunk replay replay.c -- -I./include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
