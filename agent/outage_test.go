package agent_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

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

// TestAPIServerOutage: with the API server unreachable for ten seconds mid-run, the traffic goes on, and the
// reports catch up when it returns; the final count is exact.
func TestAPIServerOutage(t *testing.T) {
	f := newFixture(t)
	const total = 140000
	tg := f.pacedGenerator("outage", total, 10000)
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newAPIProxy(t, u.Host)
	viaProxy := rest.CopyConfig(env.Config)
	viaProxy.Host = "https://" + proxy.listener.Addr().String()
	f.startAgent("node-a", viaProxy)
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
