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
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/xdpgen/xdpgen/test/manifest"
)

// managerFlagDefaults are the manager's flag defaults (cmd/manager) that the chart spells out and config/manager
// may leave out.
var managerFlagDefaults = map[string]string{
	"--zap-log-level": "info",
}

// TestKustomizeInstallsTheSame: `kubectl kustomize config/default` and the chart with default values produce the
// same objects, with the same content where it matters (everything but the chart's extra labels): the same CRDs,
// RBAC, namespace labels, manager Deployment, agent DaemonSet, Services and admission policy. So do config/local and the chart with
// hack/helm/local-cluster-values.yaml, the two ways to install on the local cluster.
func TestKustomizeInstallsTheSame(t *testing.T) {
	for _, tc := range []struct{ kustomization, values string }{
		{"config/default", ""},
		{"config/local", "hack/helm/local-cluster-values.yaml"},
	} {
		t.Run(tc.kustomization, func(t *testing.T) {
			out, err := run(t, kubectlBinary(t), "kustomize", filepath.Join(repoRoot, tc.kustomization))
			if err != nil {
				t.Fatal(err)
			}
			kustomized := index(t, manifest.Decode(t, out))
			args := []string{"--include-crds"}
			if tc.values != "" {
				args = append(args, "-f", filepath.Join(repoRoot, tc.values))
			}
			charted := index(t, helmTemplate(t, args...))

			keys := func(m map[string]*unstructured.Unstructured) []string {
				var ks []string
				for k := range m {
					ks = append(ks, k)
				}
				sort.Strings(ks)
				return ks
			}
			if d := cmp.Diff(keys(kustomized), keys(charted)); d != "" {
				t.Errorf("objects (-%s +chart):\n%s", tc.kustomization, d)
			}
			for k, ko := range kustomized {
				co, ok := charted[k]
				if !ok {
					continue
				}
				if d := cmp.Diff(comparable(t, ko), comparable(t, co)); d != "" {
					t.Errorf("%s (-%s +chart):\n%s", k, tc.kustomization, d)
				}
			}
		})
	}
}

// comparable is what must agree between the two installations: an object without its labels and annotations (the
// chart adds its own), except the CRDs whole and the namespace's pod-security labels; the manager's flags and the
// pull policies with the defaults filled in, environment variables in name order (a kustomize patch puts its own
// first).
func comparable(t *testing.T, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	c := o.DeepCopy()
	if c.GetKind() == "CustomResourceDefinition" {
		return c.Object
	}
	psa := map[string]string{}
	for k, v := range c.GetLabels() {
		if strings.HasPrefix(k, "pod-security.kubernetes.io/") {
			psa[k] = v
		}
	}
	c.SetLabels(psa)
	c.SetAnnotations(nil)
	if c.GetKind() == "Deployment" || c.GetKind() == "DaemonSet" {
		unstructured.RemoveNestedField(c.Object, "spec", "template", "metadata")
		containers, _ := nested(c, "spec", "template", "spec", "containers").([]any)
		for _, ci := range containers {
			cm := ci.(map[string]any)
			if _, ok := cm["imagePullPolicy"]; !ok {
				cm["imagePullPolicy"] = "IfNotPresent" // the API server's default for a tag other than latest
			}
			if env, ok := cm["env"].([]any); ok {
				sort.Slice(env, func(i, j int) bool {
					return env[i].(map[string]any)["name"].(string) < env[j].(map[string]any)["name"].(string)
				})
			}
			if c.GetKind() == "DaemonSet" {
				continue // the agents' flags are all spelled out
			}
			args, _ := cm["args"].([]any)
			have := flags(cm)
			for name, def := range managerFlagDefaults {
				if _, ok := have[name]; !ok {
					args = append(args, name+"="+def)
				}
			}
			sort.Slice(args, func(i, j int) bool { return args[i].(string) < args[j].(string) })
			cm["args"] = args
		}
	}
	return c.Object
}
