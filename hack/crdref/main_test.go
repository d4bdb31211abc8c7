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

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var crds = []string{
	"../../config/crd/bases/xdpgen.io_trafficgenerators.yaml",
	"../../config/crd/bases/xdpgen.io_nodereports.yaml",
	"../../config/crd/bases/xdpgen.io_trafficgeneratorpolicies.yaml",
}

// TestReferenceUpToDate: docs/crd-reference.md is what the CRDs generate (make crd-ref), so that `make test`
// catches a stale one as make verify-crd-ref does.
func TestReferenceUpToDate(t *testing.T) {
	if err := run("../../docs/crd-reference.md", true, crds); err != nil {
		t.Fatal(err)
	}
}

// TestReference writes the reference into a scratch document and checks the parts a user looks for.
func TestReference(t *testing.T) {
	readme := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(readme, []byte("# x\n\n"+beginMarker+"\nstale\n"+endMarker+"\n\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(readme, true, crds); err == nil || !strings.Contains(err.Error(), "run make crd-ref") {
		t.Errorf("check of a stale reference: %v, want it to say run make crd-ref", err)
	}
	if err := run(readme, false, crds); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"### TrafficGenerator (xdpgen.io/v1alpha1)",
		"### NodeReport (xdpgen.io/v1alpha1)",
		"| `spec.destination.port` | integer | `9` | 1 to 65535 | Port is the first destination port. |",
		"| `spec.protocol` | string | `udp` | one of udp, tcp |",
		"| `spec.start` | object | `{policy: WhenReady}` |",
		"start.policy At needs start.at",
		"set frameSize to at least …",
		"`status.conditions` | [][Condition]",
		"(short: `tg`)",
		"\nafter\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
	if strings.Contains(got, "stale") {
		t.Errorf("the old reference is still there")
	}
	if err := run(readme, true, crds); err != nil {
		t.Errorf("check right after writing: %v", err)
	}
}
