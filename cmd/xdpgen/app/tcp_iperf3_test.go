package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

// iperf3Server is `iperf3 -s -1 -J` in the remote namespace: one test, then its JSON report.
type iperf3Server struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	exited chan struct{}
}

// iperf3ServerReport is the part of the server's JSON report the tests read: what it received, per stream
// and in all.
type iperf3ServerReport struct {
	End struct {
		Streams []struct {
			Receiver struct {
				Bytes uint64 `json:"bytes"`
			} `json:"receiver"`
		} `json:"streams"`
		SumReceived struct {
			Bytes uint64 `json:"bytes"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// startIperf3 starts the server on port 5201 of the remote address and returns once it listens; the test's
// cleanup kills it if it is still running.
func startIperf3(t *testing.T, r *cliRig) *iperf3Server {
	t.Helper()
	netnstest.RequireCommand(t, "iperf3")
	s := &iperf3Server{cmd: exec.Command("ip", "netns", "exec", r.Remote.NSName,
		"iperf3", "-s", "-1", "-J", "-B", r.Remote.IPv4.String(), "-p", "5201")}
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start iperf3: %v", err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("ip", "netns", "exec", r.Remote.NSName, "ss", "-Hltn", "sport = :5201").Output()
		if len(bytes.TrimSpace(out)) > 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("iperf3 -s does not listen on port 5201 after 5s\n%s", &s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// report waits for the server to exit after its one test and reads its JSON report.
func (s *iperf3Server) report(t *testing.T) iperf3ServerReport {
	t.Helper()
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("iperf3 -s did not exit after its test\n%s", &s.stderr)
	}
	var rep iperf3ServerReport
	if err := json.Unmarshal(s.stdout.Bytes(), &rep); err != nil || rep.Error != "" {
		t.Fatalf("iperf3 -s report: %v %s\n%s\n%s", err, rep.Error, &s.stdout, &s.stderr)
	}
	return rep
}

// TestCLITCPIperf3Count runs a test of a segment count against iperf3 -s: xdpgen exits 0, and the bytes the
// server says it received are exactly the bytes xdpgen saw acknowledged (after the data stream's cookie), as
// xdpgen's text summary and the server's own report both say.
func TestCLITCPIperf3Count(t *testing.T) {
	r := newCLIRig(t)
	srv := startIperf3(t, r)
	out, err := r.command("tcp", r.Local.Interface, "-a", r.Remote.IPv4.String(), "-p", "5201", "--iperf3", "-n", "2000").Output()
	if err != nil {
		t.Fatalf("xdpgen: %v\n%s%s\nserver: %s%s", err, out, stderrOf(err), &srv.stdout, &srv.stderr)
	}
	rep := srv.report(t)

	var received, acked, streamReceived, streamAcked uint64
	var id int
	var port uint16
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "iperf3 ") {
			if _, err := fmt.Sscanf(line, "iperf3 %d bytes received by the server, %d acknowledged to xdpgen", &received, &acked); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
		}
		if strings.HasPrefix(line, "  stream ") {
			if _, err := fmt.Sscanf(line, "  stream %d port %d %d bytes received, %d acknowledged", &id, &port, &streamReceived, &streamAcked); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
		}
	}
	if acked == 0 || acked%2000 != 0 || received != acked || rep.End.SumReceived.Bytes != acked {
		t.Fatalf("xdpgen says %d bytes acknowledged and %d received, the server's report says %d, for 2000 segments\n%s",
			acked, received, rep.End.SumReceived.Bytes, out)
	}
	if id != 1 || port == 0 || streamReceived != acked || streamAcked != acked {
		t.Fatalf("stream line: id %d port %d, %d received, %d acknowledged\n%s", id, port, streamReceived, streamAcked, out)
	}
	r.requireNoXDP(t)
}

// TestCLITCPIperf3DurationTwoFlows runs a timed test over two data streams with JSON output: per stream and in
// all, the server received exactly what xdpgen saw acknowledged.
func TestCLITCPIperf3DurationTwoFlows(t *testing.T) {
	r := newCLIRig(t)
	srv := startIperf3(t, r)
	out, err := r.command("tcp", r.Local.Interface, "-a", r.Remote.IPv4.String(), "-p", "5201", "--iperf3",
		"--duration", "1s", "--flows", "2", "-o", "json").Output()
	if err != nil {
		t.Fatalf("xdpgen: %v\n%s%s\nserver: %s%s", err, out, stderrOf(err), &srv.stdout, &srv.stderr)
	}
	rep := srv.report(t)

	var last struct {
		Type   string
		TCP    struct{ Total dataplane.TCPCounters }
		Flows  []dataplane.TCPFlowStats
		Iperf3 *iperf3Report
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
	}
	x := last.Iperf3
	if last.Type != "summary" || x == nil || len(x.Streams) != 2 || len(rep.End.Streams) != 2 {
		t.Fatalf("last record %+v, server report %+v: want a summary of 2 streams from both\n%s", last, rep, out)
	}
	if x.AckedBytes == 0 || x.AckedBytes != last.TCP.Total.BytesAcked || x.ReceivedBytes != x.AckedBytes || rep.End.SumReceived.Bytes != x.AckedBytes {
		t.Fatalf("xdpgen says %d bytes acknowledged (%d in its TCP total) and %d received, the server's report says %d\n%s",
			x.AckedBytes, last.TCP.Total.BytesAcked, x.ReceivedBytes, rep.End.SumReceived.Bytes, out)
	}
	for i, s := range x.Streams {
		f := last.Flows[i]
		if s.LocalPort != f.LocalPort || s.AckedBytes != f.BytesAcked || s.ReceivedBytes != f.BytesAcked ||
			rep.End.Streams[i].Receiver.Bytes != f.BytesAcked || f.State != "closed" {
			t.Fatalf("stream %d %+v, flow %+v, server's stream %+v", i, s, f, rep.End.Streams[i])
		}
	}
	r.requireNoXDP(t)
}

// stderrOf is what a command that failed under Output wrote to its standard error.
func stderrOf(err error) []byte {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.Stderr
	}
	return nil
}
