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

package chart

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/xdpgen/xdpgen/test/manifest"
)

// TestAsDependency: the chart works as a dependency of another chart, which hands every subchart its `global`
// values (the schema allows them), and configures it under its name.
func TestAsDependency(t *testing.T) {
	helm := helmBinary(t)
	chart, err := filepath.Abs(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	for name, content := range map[string]string{
		"Chart.yaml": `apiVersion: v2
name: platform
version: 1.0.0
dependencies:
- name: xdpgen
  version: ">=0.0.0-0"
  repository: file://` + chart + "\n",
		"values.yaml": `global:
  imageRegistry: registry.example.com
  storageClass: fast
xdpgen:
  namespace: {name: platform-traffic}
  image: {tag: v9.9.9}
`,
	} {
		if err := os.WriteFile(filepath.Join(parent, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := run(t, helm, "dependency", "build", parent); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, helm, "template", "platform", parent)
	if err != nil {
		t.Fatalf("the chart as a dependency: %v", err)
	}
	deploy := get(t, index(t, manifest.Decode(t, out)), "Deployment platform-traffic/xdpgen-controller-manager")
	if image := onlyContainer(t, deploy)["image"]; image != "ghcr.io/xdpgen/xdpgen:v9.9.9" {
		t.Errorf("the manager's image %v, want the parent's xdpgen.image.tag", image)
	}

	// And on its own, given a global value (as `helm install --set global...` of an umbrella's users).
	if _, err := run(t, helm, "template", "xdpgen", chartDir, "--set", "global.imageRegistry=registry.example.com"); err != nil {
		t.Errorf("global values: %v", err)
	}
}
