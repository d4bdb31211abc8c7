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
*/package v1alpha1

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestSelectors(t *testing.T) {
	linux := labels.Set{"kubernetes.io/os": "linux", "role": "rx"}
	windows := labels.Set{"kubernetes.io/os": "windows", "role": "rx"}
	spec := TrafficGeneratorSpec{NodeSelector: map[string]string{"role": "tx"}}
	if spec.ReceiverSelector().Matches(linux) {
		t.Error("a spec without receivers selects a receiving node")
	}
	if spec.SenderSelector().Matches(linux) || !spec.SenderSelector().Matches(labels.Set{"kubernetes.io/os": "linux", "role": "tx"}) {
		t.Error("the sender selector does not follow spec.nodeSelector")
	}
	spec.Receivers = &Receivers{NodeSelector: map[string]string{"role": "rx"}}
	if !spec.ReceiverSelector().Matches(linux) || spec.ReceiverSelector().Matches(windows) {
		t.Error("the receiver selector must pick the Linux nodes receivers.nodeSelector matches")
	}
	spec.Receivers = &Receivers{}
	if !spec.ReceiverSelector().Matches(linux) {
		t.Error("an empty receivers.nodeSelector must pick every Linux node")
	}
}

func TestLossRatio(t *testing.T) {
	for _, tc := range []struct {
		lost, sent int64
		want       string
	}{{0, 100, "0"}, {0, 0, "0"}, {1, 100, "0.01"}, {123456, 1000000, "0.1235"}, {1, 3, "0.3333"}, {5, 5, "1"}, {1, 100000000, "1e-08"}} {
		if got := LossRatio(tc.lost, tc.sent); got != tc.want {
			t.Errorf("LossRatio(%d, %d) = %q, want %q", tc.lost, tc.sent, got, tc.want)
		}
	}
}

func TestLatencyOf(t *testing.T) {
	us := func(n int64) int64 { return n * 1000 }
	d := func(n int64) metav1.Duration { return metav1.Duration{Duration: time.Duration(us(n))} }
	if LatencyOf(nil, 0) != nil {
		t.Error("no samples must give no latency")
	}
	// 1000 samples: 900 at <= 10 us, 90 at <= 20 us, 9 at <= 40 us, 1 at <= 80 us.
	h := []LatencyBucket{{us(10), 900}, {us(20), 90}, {us(40), 9}, {us(80), 1}}
	want := &Latency{Samples: 1000, P50: d(10), P90: d(10), P99: d(20), P999: d(40), Max: d(80)}
	if got := LatencyOf(h, 0); !reflect.DeepEqual(want, got) {
		t.Errorf("LatencyOf = %+v, want %+v", got, want)
	}
	want.Max = d(75)
	if got := LatencyOf(h, time.Duration(us(75))); !reflect.DeepEqual(want, got) {
		t.Errorf("LatencyOf with a known max = %+v, want %+v", got, want)
	}
	// One more sample above the 90th: p90 moves to the next bucket.
	h[0].Count = 899
	h[1].Count = 91
	if got := LatencyOf(h, 0).P90; got != d(20) {
		t.Errorf("p90 of 899 at 10 us and 91 at 20 us = %v, want 20us", got)
	}
}

func TestMergeLatencyBuckets(t *testing.T) {
	got := MergeLatencyBuckets([]LatencyBucket{{20, 1}, {10, 2}}, nil, []LatencyBucket{{10, 3}, {40, 0}, {30, 4}})
	want := []LatencyBucket{{10, 5}, {20, 1}, {30, 4}}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("MergeLatencyBuckets = %v, want %v", got, want)
	}
}
