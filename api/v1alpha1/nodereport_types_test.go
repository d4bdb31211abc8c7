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

package v1alpha1

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestNodeReportName(t *testing.T) {
	long := func(n int, c string) string { return strings.Repeat(c, n) }
	tests := []struct {
		name, generator, node string
		want                  string // empty: only check validity and length
	}{
		{name: "short", generator: "udp", node: "worker-1", want: "udp-worker-1"},
		{name: "fqdn node", generator: "udp", node: "ip-10-0-0-1.eu-west-1.compute.internal", want: "udp-ip-10-0-0-1.eu-west-1.compute.internal"},
		{name: "exactly 253", generator: long(63, "g"), node: long(189, "n"), want: long(63, "g") + "-" + long(189, "n")},
		{name: "too long", generator: long(63, "g"), node: long(253, "n")},
		{name: "cut before a dot", generator: long(63, "g"), node: long(178, "n") + "." + long(100, "m")},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NodeReportName(tc.generator, tc.node)
			if tc.want != "" && got != tc.want {
				t.Errorf("NodeReportName(%q, %q) = %q, want %q", tc.generator, tc.node, got, tc.want)
			}
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("NodeReportName(%q, %q) = %q is not an object name: %v", tc.generator, tc.node, got, errs)
			}
			if other, ok := seen[got]; ok {
				t.Errorf("NodeReportName gives %q for both %s and %s", got, other, tc.name)
			}
			seen[got] = tc.name
			if again := NodeReportName(tc.generator, tc.node); again != got {
				t.Errorf("NodeReportName is not stable: %q then %q", got, again)
			}
		})
	}
}

func TestLabelValue(t *testing.T) {
	short := "worker-1"
	if got := LabelValue(short); got != short {
		t.Errorf("LabelValue(%q) = %q, want it unchanged", short, got)
	}
	a := strings.Repeat("n", 70) + ".a.example"
	b := strings.Repeat("n", 70) + ".b.example"
	la, lb := LabelValue(a), LabelValue(b)
	for _, v := range []string{la, lb} {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("LabelValue gave %q, not a label value: %v", v, errs)
		}
	}
	if la == lb {
		t.Errorf("LabelValue(%q) == LabelValue(%q) == %q: long names that differ after the cut must differ", a, b, la)
	}
}

func TestPhaseTerminal(t *testing.T) {
	for p, want := range map[Phase]bool{"": false, PhasePending: false, PhaseRunning: false, PhaseCompleted: true, PhaseFailed: true, PhaseLost: true} {
		if got := p.Terminal(); got != want {
			t.Errorf("Phase(%q).Terminal() = %v, want %v", p, got, want)
		}
	}
}

func TestShortenMessage(t *testing.T) {
	if got := ShortenMessage("short", 10); got != "short" {
		t.Errorf("ShortenMessage(short, 10) = %q, want it unchanged", got)
	}
	long := strings.Repeat("x", 5000)
	got := ShortenMessage(long, MaxMessageLength)
	if len(got) > MaxMessageLength || !strings.HasPrefix(got, "xxxx") || !strings.HasSuffix(got, " bytes cut]") {
		t.Errorf("ShortenMessage of 5000 bytes = %q (%d bytes), want the head and a note of the cut in %d bytes", got, len(got), MaxMessageLength)
	}
	kept := strings.Count(got, "x")
	if want := fmt.Sprintf("[... %d bytes cut]", 5000-kept); !strings.HasSuffix(got, want) {
		t.Errorf("ShortenMessage note = %q, want it to end in %q", got, want)
	}
	// A multi-byte character is never split.
	wide := strings.Repeat("é", 600)
	if got := ShortenMessage(wide, MaxMessageLength); !utf8.ValidString(got) || len(got) > MaxMessageLength {
		t.Errorf("ShortenMessage of %d bytes of é = %q: not valid UTF-8 or too long", len(wide), got)
	}
}
