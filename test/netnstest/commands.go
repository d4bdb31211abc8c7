package netnstest

import (
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// Exec runs a command in the host's namespace (ip netns exec) and returns its combined output, failing the
// test when it fails.
func (h Host) Exec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", h.NSName}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v in %s: %v\n%s", args, h.NSName, err, out)
	}
	return string(out)
}

var pingTime = regexp.MustCompile(`time=([0-9.]+) ms`)

// Ping sends count echo requests from the host to dst, every interval, and returns the round-trip times of the
// replies, as ping measured them.
func (h Host) Ping(t testing.TB, dst netip.Addr, count int, interval time.Duration) []time.Duration {
	t.Helper()
	RequireCommand(t, "ping")
	out := h.Exec(t, "ping", "-n", "-c", strconv.Itoa(count), "-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), dst.String())
	var rtts []time.Duration
	for _, m := range pingTime.FindAllStringSubmatch(out, -1) {
		ms, _ := strconv.ParseFloat(m[1], 64)
		rtts = append(rtts, time.Duration(ms*float64(time.Millisecond)))
	}
	if len(rtts) == 0 {
		t.Fatalf("ping %s from %s: no replies\n%s", dst, h.NSName, out)
	}
	return rtts
}
