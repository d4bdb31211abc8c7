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
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/xdpgen/xdpgen/test/monitoring"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

// exportedPrefixes are the metric names the code exports, each checked against its exposition by its package's
// tests: agent (TestMetricsExposition), controllers (TestRunMetrics), cmd/internal/version (TestBuildInfo).
var exportedPrefixes = []string{"xdpgen_agent_", "xdpgen_trafficgenerator_", "xdpgen_build_info"}

// TestMonitoringMetricNames: every metric the dashboard and the alerts use is one of those the code exports (the
// packages' tests check each against their exposition), and they use the metrics of the manager and the agents.
func TestMonitoringMetricNames(t *testing.T) {
	names := monitoring.MetricNames(t)
	covered := map[string]bool{}
	for name, where := range names {
		i := prefixOf(name)
		if i < 0 {
			t.Errorf("%s, used by %s, is none of the metrics xdpgen exports (%s...)", name, strings.Join(where, ", "),
				strings.Join(exportedPrefixes, "..., "))
			continue
		}
		covered[exportedPrefixes[i]] = true
	}
	for _, p := range exportedPrefixes {
		if !covered[p] {
			t.Errorf("the dashboard and the alerts use no %s metric", p)
		}
	}
}

func prefixOf(name string) int {
	for i, p := range exportedPrefixes {
		if strings.HasPrefix(name, p) {
			return i
		}
	}
	return -1
}

// TestMonitoringPromQL: `promtool check rules` (Debian's prometheus package) accepts the chart's rule files as they
// are, and every query of the dashboard as the expression of a recording rule, so a query that does not parse
// fails here rather than in Grafana.
func TestMonitoringPromQL(t *testing.T) {
	netnstest.RequireCommand(t, "promtool") // Debian's prometheus package; CI installs it
	promtool := "promtool"
	args := append([]string{"check", "rules"}, monitoring.RuleFiles(t)...)
	if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	exprs := monitoring.Dashboards(t)
	for i, e := range exprs {
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard_query_%d", i), Expr: e.PromQL})
	}
	y, err := sigsyaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard.rules.yaml")
	if err := os.WriteFile(file, y, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("the dashboard's queries as recording rules: %v\n%s", err, out)
		for i, e := range exprs {
			t.Logf("dashboard_query_%d (%s): %s", i, e.Where, e.PromQL)
		}
	}
}

// TestMonitoringTemplates: off by default; on, the chart ships the dashboard file as it is in a ConfigMap with the
// sidecar's label, and the rule file's groups as a PrometheusRule; the ServiceMonitor keeps the metrics' namespace
// label (the TrafficGenerator's), which the dashboard and the alerts group by.
func TestMonitoringTemplates(t *testing.T) {
	for _, k := range []string{"ConfigMap xdpgen-system/xdpgen-dashboards", "PrometheusRule xdpgen-system/xdpgen"} {
		if _, ok := index(t, helmTemplate(t))[k]; ok {
			t.Errorf("%s rendered by default", k)
		}
	}
	objs := index(t, helmTemplate(t, "--set", "dashboards.enabled=true", "--set", "dashboards.namespace=monitoring",
		"--set", "dashboards.annotations.grafana_folder=Network", "--set", "metrics.prometheusRule.enabled=true",
		"--set", "metrics.prometheusRule.labels.release=prometheus", "--set", "metrics.serviceMonitor.enabled=true"))

	cm := get(t, objs, "ConfigMap monitoring/xdpgen-dashboards")
	if cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "Network" {
		t.Errorf("dashboard ConfigMap labels %v, annotations %v: want grafana_dashboard=1 and the folder annotation",
			cm.GetLabels(), cm.GetAnnotations())
	}
	want, err := os.ReadFile(filepath.Join(chartDir, "dashboards", "xdpgen.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := nested(cm, "data", "xdpgen.json").(string)
	if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
		t.Errorf("the ConfigMap's xdpgen.json differs from dashboards/xdpgen.json")
	}
	if !json.Valid([]byte(got)) {
		t.Error("the ConfigMap's dashboard is not valid JSON")
	}

	rule := get(t, objs, "PrometheusRule xdpgen-system/xdpgen")
	if rule.GetLabels()["release"] != "prometheus" {
		t.Errorf("PrometheusRule labels %v, want release: prometheus", rule.GetLabels())
	}
	raw, err := os.ReadFile(filepath.Join(chartDir, "alerts", "xdpgen.rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := sigsyaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(file["groups"], nested(rule, "spec", "groups")); diff != "" {
		t.Errorf("PrometheusRule groups differ from alerts/xdpgen.rules.yaml (-file +rendered):\n%s", diff)
	}

	endpoints, _ := nested(get(t, objs, "ServiceMonitor xdpgen-system/xdpgen"), "spec", "endpoints").([]any)
	for _, e := range endpoints {
		if e.(map[string]any)["honorLabels"] != true {
			t.Errorf("ServiceMonitor endpoint %v does not keep the metrics' labels (honorLabels: true)", e)
		}
	}
	if len(endpoints) != 2 {
		t.Fatalf("%d ServiceMonitor endpoints, want the manager's and the agents'", len(endpoints))
	}

	// The agents' endpoint presents the token of a service account of the chart's that may read their metrics:
	// no deprecated bearerTokenFile, no binding left for the admin to make.
	agents := endpoints[1].(map[string]any)
	if _, ok := agents["bearerTokenFile"]; ok {
		t.Error("the agents' endpoint uses bearerTokenFile, which prometheus-operator deprecates")
	}
	secretName, _, _ := unstructured.NestedString(agents, "authorization", "credentials", "name")
	secret := get(t, objs, "Secret xdpgen-system/"+secretName)
	account := secret.GetAnnotations()["kubernetes.io/service-account.name"]
	if nested(secret, "type") != "kubernetes.io/service-account-token" || account == "" {
		t.Fatalf("the agents' endpoint's credentials %q are not a service account token Secret: %v", secretName, secret.Object)
	}
	get(t, objs, "ServiceAccount xdpgen-system/"+account)
	bound := false
	for _, o := range objs {
		if o.GetKind() != "ClusterRoleBinding" || nested(o, "roleRef", "name") != "xdpgen-metrics-reader" {
			continue
		}
		subjects, _ := nested(o, "subjects").([]any)
		for _, sub := range subjects {
			m := sub.(map[string]any)
			bound = bound || (m["kind"] == "ServiceAccount" && m["name"] == account && m["namespace"] == "xdpgen-system")
		}
	}
	if !bound {
		t.Errorf("the service account %s is not bound to xdpgen-metrics-reader", account)
	}
}
