package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
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
		r.rx, err = dataplane.AttachReceiver(r.Remote.Interface, dataplane.ReceiverOptions{FirstPort: 9, LastPort: 9})
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
