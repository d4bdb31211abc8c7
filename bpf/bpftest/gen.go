// Package bpftest holds BPF programs that only tests and benchmarks load: the peer's loss injector for TCP
// runs, a dropper and a delayer (tc) of stamped UDP frames for receivers to account for, a from-scratch TCP
// checksum to compare the send program with, the no-touch redirect ceiling, and the drop-only counter receivers
// are measured against. They live apart from package bpf so that the agent and the CLI do not carry them.
// `make generate-bpf` rebuilds the committed objects with the rest.
package bpftest

//go:generate go tool bpf2go -tags linux -target bpfel tcploss tcploss.c -- -I.. -I../include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel tcpcsum tcpcsum.c -- -I../include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel notouch notouch.c -- -I.. -I../include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel stampdrop stampdrop.c -- -I.. -I../include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel stampdelay stampdelay.c -- -I.. -I../include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel dropcount dropcount.c -- -I.. -I../include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
