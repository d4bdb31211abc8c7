package agent_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// TestSpecialAddressNeverSent: a generator aimed at the broadcast MAC that reached the API server without the
// admission policy (none is installed here) fails on the node without sending a frame, saying why; once the
// namespace's TrafficGeneratorPolicy allows special addresses, the same spec runs.
func TestSpecialAddressNeverSent(t *testing.T) {
	f := newFixture(t)
	f.startAgent("node-a", nil)
	broadcast := func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Destination.MAC = "ff:ff:ff:ff:ff:ff"
		s.Packets = ptr.To[int64](1000)
	}
	refused := f.generator("broadcast", broadcast)
	rep := f.report(refused, "node-a", 10*time.Second, "Failed", phase(xdpgenv1alpha1.PhaseFailed))
	for _, want := range []string{"spec.destination.mac ff:ff:ff:ff:ff:ff is a group", "no TrafficGeneratorPolicy default", "allowSpecialAddresses: true"} {
		if !strings.Contains(rep.Status.Message, want) {
			t.Errorf("message %q does not say %q", rep.Status.Message, want)
		}
	}
	if rep.Status.StartTime != nil || rep.Status.Packets != 0 {
		t.Errorf("the refused run started or counted packets: %+v", rep.Status)
	}
	time.Sleep(500 * time.Millisecond) // what was sent would have arrived
	if n := f.received(); n != 0 {
		t.Fatalf("the far end received %d frames of a refused run", n)
	}
	f.requireNoXDP()

	policy := &xdpgenv1alpha1.TrafficGeneratorPolicy{ObjectMeta: metav1.ObjectMeta{Name: xdpgenv1alpha1.DefaultPolicyName, Namespace: f.namespace},
		Spec: xdpgenv1alpha1.TrafficGeneratorPolicySpec{AllowSpecialAddresses: true}}
	if err := k8s.Create(t.Context(), policy); err != nil {
		t.Fatal(err)
	}
	allowed := f.generator("broadcast-allowed", broadcast)
	rep = f.report(allowed, "node-a", 20*time.Second, "Completed", phase(xdpgenv1alpha1.PhaseCompleted))
	if rep.Status.Packets != 1000 || f.received() != 1000 {
		t.Fatalf("report says %d packets, the far end counted %d, want 1000", rep.Status.Packets, f.received())
	}
}
