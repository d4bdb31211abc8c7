package agent

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/k8senv"
)

func TestSpecialAddress(t *testing.T) {
	for _, tc := range []struct {
		name             string
		dst, dstMAC      string
		srcMAC           string
		want             string // what the reason starts with; "" for a spec with no special address
		wantKindContains string
	}{
		{name: "private IPv4", dst: "10.200.0.2"},
		{name: "documentation IPv4", dst: "192.0.2.1"},
		{name: "public IPv4", dst: "8.8.8.8"},
		{name: "ULA IPv6", dst: "fd00::2"},
		{name: "global IPv6", dst: "2001:db8::1"},
		{name: "unicast MACs", dst: "10.0.0.1", dstMAC: "02:00:00:00:00:02", srcMAC: "02:00:00:00:00:01"},
		{name: "unicast MAC, upper case", dst: "10.0.0.1", dstMAC: "0A:00:00:00:00:02"},
		{name: "limited broadcast", dst: "255.255.255.255", want: "spec.destination.address 255.255.255.255", wantKindContains: "broadcast"},
		{name: "IPv4 multicast all hosts", dst: "224.0.0.1", want: "spec.destination.address 224.0.0.1", wantKindContains: "multicast"},
		{name: "IPv4 multicast admin scoped", dst: "239.1.2.3", want: "spec.destination.address 239.1.2.3", wantKindContains: "multicast"},
		{name: "IPv4 loopback", dst: "127.0.0.1", want: "spec.destination.address 127.0.0.1", wantKindContains: "loopback"},
		{name: "IPv4 loopback, not .1", dst: "127.8.9.10", want: "spec.destination.address 127.8.9.10", wantKindContains: "loopback"},
		{name: "cloud metadata", dst: "169.254.169.254", want: "spec.destination.address 169.254.169.254", wantKindContains: "metadata"},
		{name: "IPv4 link-local", dst: "169.254.1.1", want: "spec.destination.address 169.254.1.1", wantKindContains: "link-local"},
		{name: "IPv4 unspecified", dst: "0.0.0.0", want: "spec.destination.address 0.0.0.0", wantKindContains: "unspecified"},
		{name: "IPv6 all nodes", dst: "ff02::1", want: "spec.destination.address ff02::1", wantKindContains: "multicast"},
		{name: "IPv6 global multicast", dst: "ff0e::1", want: "spec.destination.address ff0e::1", wantKindContains: "multicast"},
		{name: "IPv6 loopback", dst: "::1", want: "spec.destination.address ::1", wantKindContains: "loopback"},
		{name: "IPv6 link-local", dst: "fe80::1", want: "spec.destination.address fe80::1", wantKindContains: "link-local"},
		{name: "IPv6 unspecified", dst: "::", want: "spec.destination.address ::", wantKindContains: "unspecified"},
		{name: "IPv4-mapped loopback", dst: "::ffff:127.0.0.1", want: "spec.destination.address ::ffff:127.0.0.1", wantKindContains: "loopback"},
		{name: "broadcast destination MAC", dst: "10.0.0.1", dstMAC: "ff:ff:ff:ff:ff:ff", want: "spec.destination.mac ff:ff:ff:ff:ff:ff", wantKindContains: "group"},
		{name: "IPv4 multicast destination MAC", dst: "10.0.0.1", dstMAC: "01:00:5e:00:00:01", want: "spec.destination.mac 01:00:5e:00:00:01", wantKindContains: "group"},
		{name: "IPv6 multicast destination MAC", dst: "fd00::2", dstMAC: "33:33:00:00:00:01", want: "spec.destination.mac 33:33:00:00:00:01", wantKindContains: "group"},
		{name: "group MAC, upper case", dst: "10.0.0.1", dstMAC: "0B:00:00:00:00:02", want: "spec.destination.mac 0B:00:00:00:00:02", wantKindContains: "group"},
		{name: "broadcast source MAC", dst: "10.0.0.1", srcMAC: "ff:ff:ff:ff:ff:ff", want: "spec.source.mac ff:ff:ff:ff:ff:ff", wantKindContains: "no host sends from"},
		{name: "multicast source MAC", dst: "10.0.0.1", srcMAC: "01:80:c2:00:00:00", want: "spec.source.mac 01:80:c2:00:00:00", wantKindContains: "group"},
		{name: "address first", dst: "224.0.0.1", dstMAC: "ff:ff:ff:ff:ff:ff", want: "spec.destination.address 224.0.0.1", wantKindContains: "multicast"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &xdpgenv1alpha1.TrafficGeneratorSpec{
				Destination: xdpgenv1alpha1.Destination{Address: tc.dst, MAC: tc.dstMAC},
				Source:      xdpgenv1alpha1.Source{MAC: tc.srcMAC},
			}
			got := specialAddress(spec)
			if tc.want == "" {
				if got != "" {
					t.Fatalf("specialAddress = %q, want none", got)
				}
				return
			}
			if !strings.HasPrefix(got, tc.want+" is ") || !strings.Contains(got, tc.wantKindContains) {
				t.Fatalf("specialAddress = %q, want %q ... %q", got, tc.want+" is", tc.wantKindContains)
			}
		})
	}
}

// TestRefuseSpecialAddresses: the namespace's TrafficGeneratorPolicy decides, and without one nothing special is
// sent.
func TestRefuseSpecialAddresses(t *testing.T) {
	policy := func(allow bool) *xdpgenv1alpha1.TrafficGeneratorPolicy {
		return &xdpgenv1alpha1.TrafficGeneratorPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "team"},
			Spec: xdpgenv1alpha1.TrafficGeneratorPolicySpec{AllowSpecialAddresses: allow}}
	}
	generator := func(dst string) *xdpgenv1alpha1.TrafficGenerator {
		return &xdpgenv1alpha1.TrafficGenerator{ObjectMeta: metav1.ObjectMeta{Name: "tg", Namespace: "team"},
			Spec: xdpgenv1alpha1.TrafficGeneratorSpec{Destination: xdpgenv1alpha1.Destination{Address: dst}}}
	}
	for _, tc := range []struct {
		name    string
		policy  client.Object
		dst     string
		wantErr string
	}{
		{name: "unicast, no policy", dst: "10.0.0.1"},
		{name: "special, no policy", dst: "224.0.0.1", wantErr: "namespace team has no TrafficGeneratorPolicy default allowing special addresses"},
		{name: "special, policy refuses", policy: policy(false), dst: "169.254.169.254",
			wantErr: "TrafficGeneratorPolicy team/default does not allow special addresses"},
		{name: "special, policy allows", policy: policy(true), dst: "169.254.169.254"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(k8senv.Scheme)
			if tc.policy != nil {
				b = b.WithObjects(tc.policy)
			}
			err := refuseSpecialAddresses(t.Context(), b.Build(), generator(tc.dst))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
