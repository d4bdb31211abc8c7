package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

// cliRig is a veth pair with the receive counter on the remote end, and the xdpgen binary built from this tree.
type cliRig struct {
	*netnstest.Pair
	rx  *dataplane.Receiver
	bin string
}

func newCLIRig(t *testing.T) *cliRig {
	t.Helper()
	r := &cliRig{Pair: netnstest.NewPair(t, netnstest.Options{})}
	err := netnstest.Do(r.Remote.NS, func() (err error) {
		r.rx, err = dataplane.AttachReceiver(r.Remote.Interface, dataplane.ReceiverOptions{FirstPort: 9, LastPort: 9, AnyGenerator: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.rx.Close() })
	r.bin = filepath.Join(t.TempDir(), "xdpgen")
	if out, err := exec.Command("go", "build", "-o", r.bin, "github.com/xdpgen/xdpgen/cmd/xdpgen").CombinedOutput(); err != nil {
		t.Fatalf("build xdpgen: %v\n%s", err, out)
	}
	return r
}

// command runs xdpgen in the local namespace, as a user would with `ip netns exec`.
func (r *cliRig) command(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", r.Local.NSName, r.bin}, args...)...)
}

// interruptAfter runs xdpgen, sends it SIGINT (Ctrl-C) after run, and returns its standard output once it has
// exited 0, failing the test if it exits otherwise or not within exit.
func (r *cliRig) interruptAfter(t *testing.T, run, exit time.Duration, args ...string) string {
	t.Helper()
	cmd := r.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	time.Sleep(run)
	// ip netns exec execs xdpgen in place, so the signal reaches it directly.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("xdpgen exited with %v after Ctrl-C\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(exit):
		t.Fatalf("xdpgen did not exit within %s of Ctrl-C", exit)
	}
	return stdout.String()
}

func (r *cliRig) requireNoXDP(t *testing.T) {
	t.Helper()
	if r.Local.XDPAttached(t) {
		t.Fatalf("an XDP program is still attached to %s", r.Local.Interface)
	}
}

func TestCLISendsACountAsJSON(t *testing.T) {
	r := newCLIRig(t)
	out, err := r.command("udp", r.Local.Interface, "-a", r.Remote.IPv4.String(), "-n", "5000", "-t", "1", "-o", "json", "-I", "100ms").Output()
	if err != nil {
		t.Fatalf("xdpgen: %v\n%s", err, out)
	}
	var last struct {
		Type    string
		Actions map[string]struct{ Packets, Bytes uint64 }
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	lines := 0
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines++
	}
	if last.Type != "summary" || last.Actions["XDP_REDIRECT"].Packets != 5000 || last.Actions["XDP_REDIRECT"].Bytes != 5000*64 {
		t.Fatalf("last record %+v, want a summary of 5000 64-byte frames redirected\n%s", last, out)
	}
	if got, _ := r.rx.Counts(); got.Matched.Packets != 5000 {
		t.Fatalf("peer counted %d, want 5000", got.Matched.Packets)
	}
	r.requireNoXDP(t)
}

// TestCLISendsIMIX sends the simple IMIX: the summary counts the frames of each size in the weights' exact
// proportion, and the peer counted every frame.
func TestCLISendsIMIX(t *testing.T) {
	r := newCLIRig(t)
	out, err := r.command("udp", r.Local.Interface, "-a", r.Remote.IPv4.String(), "-n", "1200", "--sizes", "imix-simple", "-o", "json").Output()
	if err != nil {
		t.Fatalf("xdpgen: %v\n%s", err, out)
	}
	var last struct {
		Type  string
		Sizes []dataplane.SizeCount
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
	}
	want := []dataplane.SizeCount{{Min: 60, Max: 60, Packets: 700}, {Min: 566, Max: 566, Packets: 400}, {Min: 1514, Max: 1514, Packets: 100}}
	if last.Type != "summary" || len(last.Sizes) != 3 || last.Sizes[0] != want[0] || last.Sizes[1] != want[1] || last.Sizes[2] != want[2] {
		t.Fatalf("last record %+v, want a summary with sizes %v\n%s", last, want, out)
	}
	if got, _ := r.rx.Counts(); got.Matched.Packets != 1200 || got.Matched.Bytes != 100*(7*60+4*566+1514) {
		t.Fatalf("peer counted %+v, want 1200 frames of %d bytes", got.Matched, 100*(7*60+4*566+1514))
	}
	r.requireNoXDP(t)
}

// TestCLISendsAddressRanges sends source and destination ranges: the first line counts the distinct flows, the
// summary names the destination range.
func TestCLISendsAddressRanges(t *testing.T) {
	r := newCLIRig(t)
	out, err := r.command("udp", r.Local.Interface, "-m", r.Remote.MAC.String(), "--dst-range", "10.200.0.96/28",
		"--src-range", "10.200.0.50-10.200.0.57", "-d", "4", "-p", "9", "--addr-order", "random", "-n", "1000").Output()
	if err != nil {
		t.Fatalf("xdpgen: %v\n%s", err, out)
	}
	for _, want := range []string{
		"udp 10.200.0.50-10.200.0.57 random:9 -> 10.200.0.97-10.200.0.110 random:9-12", "448 flow(s)",
		"1000 pkts to 10.200.0.97-10.200.0.110",
	} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	r.requireNoXDP(t)
}

// TestCLIPercentOfAVeth: a veth reports no line rate to take a percentage of: xdpgen says so and what to give
// instead, and leaves nothing attached.
func TestCLIPercentOfAVeth(t *testing.T) {
	r := newCLIRig(t)
	out, err := r.command("udp", r.Local.Interface, "-a", r.Remote.IPv4.String(), "--rate-percent", "10", "-n", "10").CombinedOutput()
	want := "--rate/--rate-bps/--rate-l1-bps/--rate-percent: a percentage of the line rate needs the link speed, and " +
		r.Local.Interface + " is a veth, whose speed is a nominal constant of the driver: give the rate in packets/s or bits/s"
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("xdpgen: %v\n%s\nwant it to fail saying %q", err, out, want)
	}
	r.requireNoXDP(t)
}

// TestCLIInjects injects frames into the local namespace's own interface: a socket there receives every one, and
// the summary counts them as passed to the stack.
func TestCLIInjects(t *testing.T) {
	r := newCLIRig(t)
	conn := netnstest.ListenUDP(t, r.Local.NS, r.Local.IPv4, 7777, "")
	out, err := r.command("udp", r.Local.Interface, "--inject", "-a", r.Local.IPv4.String(), "-A", r.Remote.IPv4.String(),
		"-p", "7777", "-n", "100").Output()
	if err != nil {
		t.Fatalf("xdpgen: %v\n%s", err, out)
	}
	for _, want := range []string{"Injecting into " + r.Local.Interface, "injected into " + r.Local.Interface + "'s receive path"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`XDP_PASS\s+100 pkts`).Match(out) {
		t.Fatalf("the summary does not count 100 frames passed:\n%s", out)
	}
	buf := make([]byte, 2048)
	for i := range 100 {
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Read(buf); err != nil {
			t.Fatalf("datagram %d of 100: %v", i+1, err)
		}
	}
	r.requireNoXDP(t)
}

// TestCLIStopsCleanlyOnCtrlC interrupts an unlimited run: xdpgen prints its summary, exits 0, and leaves no XDP
// program attached.
func TestCLIStopsCleanlyOnCtrlC(t *testing.T) {
	r := newCLIRig(t)
	out := r.interruptAfter(t, 1500*time.Millisecond, 3*time.Second, "udp", r.Local.Interface, "-a", r.Remote.IPv4.String(), "-d", "10", "-p", "1")
	for _, want := range []string{"Transmitting on " + r.Local.Interface, "Period of", "XDP_REDIRECT", "Summary:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	r.requireNoXDP(t)
}

func TestCLIProbe(t *testing.T) {
	r := newCLIRig(t)
	out, err := r.command("probe", r.Local.Interface).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), r.Local.Interface+": yes") {
		t.Fatalf("probe: %v\n%s", err, out)
	}
}

// TestCLIReceiveAndLatency runs the pair a user runs on two hosts: `xdpgen receive` in one namespace, `xdpgen udp
// --latency` in the other. The receiver prints the sender's path with every frame received and no gap; the
// sender prints what it sent and the round-trip times of the frames the receiver sent back.
func TestCLIReceiveAndLatency(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Options{})
	bin := filepath.Join(t.TempDir(), "xdpgen")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/xdpgen/xdpgen/cmd/xdpgen").CombinedOutput(); err != nil {
		t.Fatalf("build xdpgen: %v\n%s", err, out)
	}
	recv := exec.Command("ip", "netns", "exec", p.Remote.NSName, bin, "receive", p.Remote.Interface, "-o", "json", "-I", "10s")
	var recvOut, recvErr bytes.Buffer
	recv.Stdout, recv.Stderr = &recvOut, &recvErr
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = recv.Process.Kill() })
	for deadline := time.Now().Add(5 * time.Second); !p.Remote.XDPAttached(t); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("xdpgen receive attached nothing in 5s: %s", recvErr.String())
		}
	}

	const count = 20_000
	out, err := exec.Command("ip", "netns", "exec", p.Local.NSName, bin, "udp", p.Local.Interface, "-a", p.Remote.IPv4.String(),
		"-n", strconv.Itoa(count), "--rate", "20k", "--latency", "10", "--generator-id", "42", "--sender-id", "7", "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("xdpgen udp: %v\n%s", err, out)
	}
	var summary, latency struct {
		Type         string
		Destinations []struct {
			Addr    string
			Packets uint64
		}
		Latency []struct {
			Addr    string
			Samples uint64
			P50Ns   int64
			P99Ns   int64
			MaxNs   int64
		}
	}
	for line := range bytes.Lines(out) {
		var rec struct{ Type string }
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		switch rec.Type {
		case "summary":
			_ = json.Unmarshal(line, &summary)
		case "latency":
			_ = json.Unmarshal(line, &latency)
		}
	}
	if len(summary.Destinations) != 1 || summary.Destinations[0].Packets != count {
		t.Fatalf("summary destinations %+v, want %d sent to %s\n%s", summary.Destinations, count, p.Remote.IPv4, out)
	}
	if len(latency.Latency) != 1 || latency.Latency[0].Samples != count/10 || latency.Latency[0].P50Ns <= 0 ||
		latency.Latency[0].P50Ns > latency.Latency[0].P99Ns || latency.Latency[0].P99Ns > latency.Latency[0].MaxNs {
		t.Fatalf("latency %+v, want %d samples with ordered percentiles\n%s", latency.Latency, count/10, out)
	}
	if p.Local.XDPAttached(t) {
		t.Fatal("xdpgen udp left its receive program attached")
	}

	if err := recv.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := recv.Wait(); err != nil {
		t.Fatalf("xdpgen receive: %v\n%s", err, recvErr.String())
	}
	var total struct {
		Type  string
		Paths []struct {
			Generator, Sender              uint32
			Src, Dst                       string
			Received, Gaps                 uint64
			Reordered, Duplicates, Streams uint64
		}
		Reflected uint64
	}
	lines := bytes.Split(bytes.TrimSpace(recvOut.Bytes()), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], &total); err != nil || total.Type != "total" {
		t.Fatalf("last line %q: %v, want the total", lines[len(lines)-1], err)
	}
	if len(total.Paths) != 1 {
		t.Fatalf("paths %+v, want the sender's one", total.Paths)
	}
	got := total.Paths[0]
	if got.Generator != 42 || got.Sender != 7 || got.Src != p.Local.IPv4.String() || got.Dst != p.Remote.IPv4.String() ||
		got.Received != count || got.Gaps != 0 || got.Reordered != 0 || got.Duplicates != 0 || got.Streams != 1 || total.Reflected != count/10 {
		t.Fatalf("receiver's path %+v (reflected %d), want generator 42 sender 7 %s -> %s, all %d received, %d reflected",
			got, total.Reflected, p.Local.IPv4, p.Remote.IPv4, count, count/10)
	}
}
