/*
Copyright 2026 The xdpgen Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package cluster

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNodes(t *testing.T) {
	opts := Options{Dir: "/run/c", NodeName: "host", PodCIDR: "10.244.0.0/24", Nodes: 2}
	got, err := nodes(opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{
		{Name: "host", IP: "10.251.0.1", PodCIDR: "10.244.0.0/24"},
		{Name: "node2", Netns: "/run/c/nodes/node2/netns", IP: "10.251.0.2", HostLink: "xdpgen-node2", HostIP: "10.251.0.1",
			PodCIDR: "10.244.1.0/24"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("two nodes (-want +got):\n%s", diff)
	}

	opts.Nodes = 1
	got, err = nodes(opts)
	if err != nil {
		t.Fatal(err)
	}
	// One node serves on 127.0.0.1 and lets the kubelet pick its InternalIP, as before there was a second.
	if diff := cmp.Diff([]Node{{Name: "host", PodCIDR: "10.244.0.0/24"}}, got); diff != "" {
		t.Errorf("one node (-want +got):\n%s", diff)
	}

	for _, n := range []int{0, 3} {
		opts.Nodes = n
		if _, err := nodes(opts); err == nil {
			t.Errorf("%d nodes accepted", n)
		}
	}
}

func TestNextSubnet(t *testing.T) {
	for in, want := range map[string]string{
		"10.244.0.0/24":   "10.244.1.0/24",
		"10.244.255.0/24": "10.245.0.0/24",
		"10.0.0.0/16":     "10.1.0.0/16",
	} {
		if got, err := nextSubnet(in); err != nil || got != want {
			t.Errorf("nextSubnet(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := nextSubnet("fd00::/64"); err == nil {
		t.Error("an IPv6 pod CIDR accepted")
	}
}

func TestNodeComponent(t *testing.T) {
	first, second := Node{Name: "host"}, Node{Name: "node2", Netns: "/run/c/nodes/node2/netns"}
	if got := nodeComponent(first, Kubelet); got != "kubelet" {
		t.Errorf("the first node's kubelet is %q", got)
	}
	if got := nodeComponent(second, Kubelet); got != "node2-kubelet" {
		t.Errorf("node2's kubelet is %q", got)
	}
}

// TestBPFFSShared: the harness takes a shared bpffs on /sys/fs/bpf, or none (it mounts one), and refuses a private
// one saying how to fix it, as mountinfo lines of each show them.
func TestBPFFSShared(t *testing.T) {
	const (
		sysfs   = "25 23 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
		shared  = "60 25 0:40 / /sys/fs/bpf rw,relatime shared:30 - bpf bpffs rw,mode=700\n"
		bound   = "49 25 0:22 /fs/bpf /sys/fs/bpf rw,relatime - sysfs sysfs rw\n"
		private = "50 49 0:39 / /sys/fs/bpf rw,relatime - bpf bpf rw,mode=700\n"
	)
	for _, tc := range []struct {
		name, mountinfo string
		refused         bool
	}{
		{"none", sysfs, false},
		{"shared", sysfs + shared, false},
		{"private over a bind of itself, as bpftool leaves it", sysfs + bound + private, true},
	} {
		mounts, err := parseMountInfo(strings.NewReader(tc.mountinfo))
		if err != nil {
			t.Fatal(err)
		}
		err = bpffsShared(mounts)
		if tc.refused != (err != nil) || (err != nil && !strings.Contains(err.Error(), "mount --make-shared /sys/fs/bpf")) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if got, _ := parseMountInfo(strings.NewReader(`36 35 98:0 /mnt1 /mnt/with\040space rw shared:1 master:2 - ext3 /dev/root rw` + "\n")); len(got) != 1 ||
		got[0].point != "/mnt/with space" || got[0].fsType != "ext3" || !slices.Equal(got[0].optional, []string{"shared:1", "master:2"}) {
		t.Errorf("parsed %+v", got)
	}
}
