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

// Package chart tests the Helm chart charts/xdpgen and the kustomize installation config/default: what they render
// (offline, with the pinned helm and kubectl) and what a real kube-apiserver makes of them (envtest).
package chart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/xdpgen/xdpgen/test/k8senv"
	"github.com/xdpgen/xdpgen/test/k8sversion"
	"github.com/xdpgen/xdpgen/test/manifest"
)

const (
	// helmVersion is the Makefile's HELM_VERSION.
	helmVersion = "v4.3.1"
	repoRoot    = "../.."
)

var chartDir = filepath.Join(repoRoot, "charts", "xdpgen")

// tool returns the absolute path of a pinned tool: $env, or the default path under the repository's bin/. Missing,
// the test skips (or fails when k8senv.Required()).
func tool(t testing.TB, env, def, build string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(repoRoot, def)
	}
	abs, err := filepath.Abs(p)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		msg := "no " + filepath.Base(def) + " at " + p + " (" + build + " builds it, or set " + env + ")"
		k8senv.Missing(t, msg)
	}
	return abs
}

func helmBinary(t testing.TB) string {
	return tool(t, "XDPGEN_HELM", filepath.Join("bin", "helm", helmVersion, "helm"), "make helm")
}

func kubectlBinary(t testing.TB) string {
	return tool(t, "XDPGEN_KUBECTL", filepath.Join("bin", "k8s", k8sversion.Version, "kubectl"), "make kubectl")
}

// run runs a tool and returns its standard output, and its standard error in the error.
func run(t testing.TB, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// helm keeps caches and its plugin and repository configuration under these; keep the user's out of the tests.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), &toolError{cmd: filepath.Base(bin) + " " + strings.Join(args, " "), err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type toolError struct {
	cmd, stderr string
	err         error
}

func (e *toolError) Error() string { return e.cmd + ": " + e.err.Error() + ": " + e.stderr }

// helmTemplate renders the chart as `helm install` would (release "xdpgen" in namespace "default" unless args
// say otherwise) and decodes the objects.
func helmTemplate(t testing.TB, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := run(t, helmBinary(t), append([]string{"template", "xdpgen", chartDir}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return manifest.Decode(t, out)
}

// key names an object: Kind namespace/name (namespace empty for cluster-scoped objects).
func key(o *unstructured.Unstructured) string {
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// index maps objects by key, failing on duplicates.
func index(t testing.TB, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if _, dup := m[key(o)]; dup {
			t.Errorf("rendered twice: %s", key(o))
		}
		m[key(o)] = o
	}
	return m
}

// get returns the object of the given key, failing the test when it is missing.
func get(t testing.TB, objs map[string]*unstructured.Unstructured, k string) *unstructured.Unstructured {
	t.Helper()
	o, ok := objs[k]
	if !ok {
		t.Fatalf("no %s rendered", k)
	}
	return o
}

// nested returns the value at a path of fields, or nil.
func nested(o *unstructured.Unstructured, fields ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(o.Object, fields...)
	return v
}

// managerContainer returns the manager's container of a rendered Deployment.
func onlyContainer(t testing.TB, deploy *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs, _ := nested(deploy, "spec", "template", "spec", "containers").([]any)
	if len(cs) != 1 {
		t.Fatalf("Deployment %s has %d containers, want 1", deploy.GetName(), len(cs))
	}
	return cs[0].(map[string]any)
}

// flags maps a container's --name=value arguments (and bare --name to "").
func flags(c map[string]any) map[string]string {
	m := map[string]string{}
	args, _ := c["args"].([]any)
	for _, a := range args {
		s, _ := a.(string)
		name, value, _ := strings.Cut(s, "=")
		m[name] = value
	}
	return m
}
