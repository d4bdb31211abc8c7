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
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// TestCRDUpgrade follows the upgrade path of the chart's README on a real API server. The next chart has a
// CRD changed as a later release changes one (a new spec field, a reworded description): `helm upgrade` to it
// leaves the CRD as the first install made it; `helm show crds NEXT | kubectl apply --server-side
// --force-conflicts -f -` updates it. Without --force-conflicts kubectl refuses, because the install made helm
// the fields' manager. Applying the current chart's CRDs the same way puts them back.
func TestCRDUpgrade(t *testing.T) {
	requireEnvtest(t)
	helm, kubectl := helmBinary(t), kubectlBinary(t)
	kubeconfig := adminKubeconfig(t)
	const crdName = "trafficgenerators.xdpgen.io"

	next := filepath.Join(t.TempDir(), "xdpgen")
	if err := os.CopyFS(next, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	crdFile := filepath.Join(next, "crds", "xdpgen.io_trafficgenerators.yaml")
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(readTestFile(t, crdFile), &crd); err != nil {
		t.Fatal(err)
	}
	schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	schema.Description = "Reworded by the next release."
	spec := schema.Properties["spec"]
	spec.Properties["nextReleaseField"] = apiextensionsv1.JSONSchemaProps{Type: "string", Description: "New in the next release."}
	schema.Properties["spec"] = spec
	b, err := yaml.Marshal(&crd)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crdFile, b, 0o644); err != nil {
		t.Fatal(err)
	}

	helmRun := func(args ...string) {
		t.Helper()
		// A namespace of its own: envtest runs no namespace controller, so another test's stays Terminating.
		args = append(args, "--set", "namespace.name=crd-upgrade", "--kubeconfig", kubeconfig, "--namespace", "default")
		if out, err := run(t, helm, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	applyCRDs := func(chart string, extra ...string) error {
		t.Helper()
		crds, err := run(t, helm, "show", "crds", chart)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "crds.yaml")
		if err := os.WriteFile(f, []byte(crds), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = run(t, kubectl, append([]string{"--kubeconfig", kubeconfig, "apply", "--server-side", "-f", f}, extra...)...)
		return err
	}
	served := func() *apiextensionsv1.JSONSchemaProps {
		t.Helper()
		var c apiextensionsv1.CustomResourceDefinition
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: crdName}, &c); err != nil {
			t.Fatal(err)
		}
		return c.Spec.Versions[0].Schema.OpenAPIV3Schema
	}

	helmRun("install", "xdpgen", chartDir)
	t.Cleanup(func() {
		_, _ = run(t, helm, "uninstall", "xdpgen", "--kubeconfig", kubeconfig, "--namespace", "default")
	})
	helmRun("upgrade", "xdpgen", next)
	if s := served(); s.Description == schema.Description || hasField(s, "nextReleaseField") {
		t.Errorf("helm upgrade changed the CRD %s: the chart's README says it does not", crdName)
	}

	err = applyCRDs(next)
	if err == nil || !strings.Contains(err.Error(), "conflict") {
		t.Errorf("kubectl apply --server-side of the next CRDs without --force-conflicts: %v, want a conflict with helm", err)
	}
	if err := applyCRDs(next, "--force-conflicts"); err != nil {
		t.Fatalf("the README's CRD upgrade: %v", err)
	}
	if s := served(); s.Description != schema.Description || !hasField(s, "nextReleaseField") {
		t.Errorf("after the README's CRD upgrade the CRD %s is not the next release's", crdName)
	}

	if err := applyCRDs(chartDir, "--force-conflicts"); err != nil {
		t.Fatalf("back to this chart's CRDs: %v", err)
	}
	if s := served(); s.Description == schema.Description || hasField(s, "nextReleaseField") {
		t.Errorf("applying this chart's CRDs left the next release's changes in %s", crdName)
	}
}

func hasField(s *apiextensionsv1.JSONSchemaProps, field string) bool {
	_, ok := s.Properties["spec"].Properties[field]
	return ok
}

func readTestFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
