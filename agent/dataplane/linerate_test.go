package dataplane

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	vnl "github.com/vishvananda/netlink"

	"github.com/xdpgen/xdpgen/test/netnstest"
)

func TestRatePPS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     UDPConfig
		linkBPS float64
		want    float64
	}{
		{"pps", UDPConfig{FrameSize: 60, RatePPS: 1000}, 0, 1000},
		{"l2", UDPConfig{FrameSize: 125, RateBPS: 1e6}, 0, 1000},
		// The classic: 64-byte frames (60 without FCS) fill 10 Gbit/s at 14.88 Mpps.
		{"l1 line rate", UDPConfig{FrameSize: 60, RateL1BPS: 10e9}, 0, 10e9 / (84 * 8)},
		{"percent", UDPConfig{FrameSize: 60, RateLinePercent: 50}, 10e9, 5e9 / (84 * 8)},
		{"l1 of a mix", UDPConfig{Sizes: &FrameSizes{Mix: SizeProfiles["imix-simple"]}, RateL1BPS: 1e9}, 0, 1e9 / ((349.8333333 + 24) * 8)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg.withDefaults()
			if got := cfg.ratePPS(tc.linkBPS); math.Abs(got-tc.want) > 1e-3*tc.want {
				t.Fatalf("ratePPS = %f, want %f", got, tc.want)
			}
		})
	}
	if got := (UDPConfig{FrameSize: 60, RateL1BPS: 10e9}).ratePPS(0); math.Round(got/1e4) != 1488 {
		t.Fatalf("64-byte frames at 10G L1: %.0f pps, want 14.88M", got)
	}
}

func TestRateValidation(t *testing.T) {
	dst := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		cfg  UDPConfig
		want string
	}{
		{UDPConfig{DstAddr: dst, RatePPS: 1, RateL1BPS: 1e9}, "rate: give one rate: in packets/s, in bits/s (layer 2 or layer 1) or in percent of the line rate"},
		{UDPConfig{DstAddr: dst, RateL1BPS: 100}, "rate 100 bit/s: below one 64-byte frame (88 bytes on the wire) per second: use at least 704 bit/s"},
		{UDPConfig{DstAddr: dst, RateLinePercent: 150}, "rate 150%: a percentage of the line rate is above 0 and at most 100"},
	} {
		if _, err := tc.cfg.validated(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
	}
}

// TestPercentOfAVethRefused: a veth's speed is a constant of its driver, so a percentage of it is refused, saying
// what to give instead.
func TestPercentOfAVethRefused(t *testing.T) {
	r := newRig(t, netnstest.Options{}, 9, 9, false)
	_, err := r.tryGenerator(UDPConfig{DstAddr: r.Remote.IPv4, RateLinePercent: 10, Packets: 10})
	want := "rate: a percentage of the line rate needs the link speed, and " + r.Local.Interface + " is a veth"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}

// tapWithSpeed makes a tap interface in h's namespace whose driver reports speedMbps (set with ethtool, as a
// hypervisor's virtual NIC would report it), up and addressed, and returns the file its frames are read from.
func tapWithSpeed(t *testing.T, h netnstest.Host, name string, speedMbps int) *os.File {
	t.Helper()
	netnstest.RequireCommand(t, "ethtool")
	tap := &vnl.Tuntap{LinkAttrs: vnl.LinkAttrs{Name: name}, Mode: vnl.TUNTAP_MODE_TAP, Flags: vnl.TUNTAP_NO_PI, Queues: 1}
	err := netnstest.Do(h.NS, func() error {
		if err := vnl.LinkAdd(tap); err != nil {
			return err
		}
		addr, _ := vnl.ParseAddr("10.209.0.1/24")
		if err := vnl.AddrAdd(tap, addr); err != nil {
			return err
		}
		return vnl.LinkSetUp(tap)
	})
	if err != nil {
		t.Fatalf("tap %s: %v", name, err)
	}
	t.Cleanup(func() {
		for _, f := range tap.Fds {
			f.Close()
		}
	})
	h.Exec(t, "ethtool", "-s", name, "speed", "100", "duplex", "full", "autoneg", "off")
	return tap.Fds[0]
}

// TestPercentOfLineRate sends 10% of a 100 Mbit/s link's layer-1 rate, counted where the frames arrive (read from
// the tap device they are sent through): within 5% of 10 Mbit/s on the wire, that is 1221 frames/s of 1000 bytes.
func TestPercentOfLineRate(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Options{})
	const name, frameSize = "xgtap0", 1000
	tap := tapWithSpeed(t, p.Local, name, 100)
	counted := make(chan int, 1)
	stop := make(chan struct{})
	go func() {
		n := 0
		buf := make([]byte, 4096)
		for {
			_ = tap.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			m, err := tap.Read(buf)
			if err == nil && m == frameSize {
				n++
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			select {
			case <-stop:
				counted <- n
				return
			default:
			}
		}
		counted <- n
	}()
	var g *UDPGenerator
	err := netnstest.Do(p.Local.NS, func() (err error) {
		g, err = NewUDPGenerator(UDPConfig{Interface: name, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, DstAddr: netip.MustParseAddr("10.209.0.2"),
			FrameSize: frameSize, RateLinePercent: 10, Duration: 2 * time.Second})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	s := run(t, g)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	got := float64(<-counted) / 2
	want := 10e6 / ((frameSize + L1Overhead) * 8)
	if math.Abs(got-want) > 0.05*want {
		t.Fatalf("the tap received %.0f frames/s, want %.0f ±5%% (engine sent %d)", got, want, s.Sent().Packets)
	}
	if !strings.Contains(g.Flow(), "paced to 1221 pps") {
		t.Errorf("flow %q does not say it is paced to 1221 pps", g.Flow())
	}
	t.Logf("the tap received %.0f frames/s for a target of %.0f (10%% of 100 Mbit/s at layer 1)", got, want)
}
