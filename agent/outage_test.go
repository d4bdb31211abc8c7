package agent_test

import (
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// apiProxy forwards TCP to the API server until it is cut, which drops every connection and refuses new ones:
// to a client, the API server is gone.
type apiProxy struct {
	listener net.Listener
	target   string
	mu       sync.Mutex
	cut      bool
	conns    map[net.Conn]bool
}

func newAPIProxy(t *testing.T, target string) *apiProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &apiProxy{listener: l, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { l.Close(); p.setCut(true) })
	go p.serve()
	return p
}

func (p *apiProxy) serve() {
	for {
		c, err := p.listener.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// startAgentBehindProxy starts node's agent with the API server behind a proxy that the test can cut.
func (f *fixture) startAgentBehindProxy(node string) *apiProxy {
	f.t.Helper()
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		f.t.Fatal(err)
	}
	proxy := newAPIProxy(f.t, u.Host)
	viaProxy := rest.CopyConfig(env.Config)
	viaProxy.Host = "https://" + proxy.listener.Addr().String()
	f.startAgent(node, viaProxy)
	return proxy
}

// setCut cuts the API server off (dropping every open connection) or brings it back.
func (p *apiProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// TestAPIServerOutage: with the API server unreachable for ten seconds mid-run (less than the dead-man timeout,
// 60 s by default), the traffic goes on, and the reports catch up when it returns; the final count is exact.
func TestAPIServerOutage(t *testing.T) {
	f := newFixture(t)
	const total = 140000
	tg := f.pacedGenerator("outage", total, 10000)
	proxy := f.startAgentBehindProxy("node-a")
	f.report(tg, "node-a", 10*time.Second, "sending", func(r *xdpgenv1alpha1.NodeReport) bool { return r.Status.Packets > 0 })

	proxy.setCut(true)
	before := f.received()
	time.Sleep(10 * time.Second)
	during := f.received() - before
	proxy.setCut(false)
	if during < 90000 {
		t.Fatalf("only %d packets arrived during the 10s outage at 10000 pps: the traffic stopped", during)
	}
	rep := f.report(tg, "node-a", 30*time.Second, "Completed", phase(xdpgenv1alpha1.PhaseCompleted))
	if rep.Status.Packets != total || f.received() != total {
		t.Fatalf("report says %d packets, the far end counted %d, want %d", rep.Status.Packets, f.received(), total)
	}
}

// TestDeadManSwitch: a continuous run whose API server is cut stops sending within spec.deadManTimeout plus 2 s,
// counted at the far end; it rides out the first part of the outage, and once the API server is back its report
// says why it stopped, and it stays stopped.
func TestDeadManSwitch(t *testing.T) {
	f := newFixture(t)
	const deadMan = 3 * time.Second
	tg := f.generator("dead-man", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Packets = nil
		s.Continuous = true
		s.Rate = &xdpgenv1alpha1.Rate{PacketsPerSecond: ptr.To[int64](10000)}
		s.DeadManTimeout = &metav1.Duration{Duration: deadMan}
	})
	proxy := f.startAgentBehindProxy("node-a")
	f.report(tg, "node-a", 10*time.Second, "sending", func(r *xdpgenv1alpha1.NodeReport) bool { return r.Status.Packets > 0 })

	proxy.setCut(true)
	cut := f.received()
	time.Sleep(deadMan / 2)
	if during := f.received() - cut; during < 10000 {
		t.Errorf("only %d packets arrived in the first %s of the outage at 10000 pps: the run stopped before its dead-man timeout", during, deadMan/2)
	}
	time.Sleep(deadMan/2 + 2*time.Second)
	stoppedAt := f.received()
	time.Sleep(2 * time.Second)
	if more := f.received() - stoppedAt; more != 0 {
		t.Fatalf("%d packets arrived between %s and %s after the API server was cut: the dead-man switch did not stop the run",
			more, deadMan+2*time.Second, deadMan+4*time.Second)
	}
	proxy.setCut(false)
	rep := f.report(tg, "node-a", 30*time.Second, "Failed", phase(xdpgenv1alpha1.PhaseFailed))
	if !strings.Contains(rep.Status.Message, "could not write this report to the API server for 3s (spec.deadManTimeout)") {
		t.Errorf("the report does not say why the run stopped: %q", rep.Status.Message)
	}
	time.Sleep(2 * time.Second)
	if got := f.received(); got != stoppedAt || int64(got) != rep.Status.Packets {
		t.Fatalf("after the API server returned: far end %d packets (%d when the run stopped), report %d: the run must stay stopped and count exactly",
			got, stoppedAt, rep.Status.Packets)
	}
	f.requireNoXDP()
}
