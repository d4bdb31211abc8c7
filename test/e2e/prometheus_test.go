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

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/monitoring"
	"github.com/xdpgen/xdpgen/test/netnstest"
	"github.com/xdpgen/xdpgen/test/poll"
)

// prometheusBinary is Debian's Prometheus server (apt-get install prometheus); the test skips without it, and
// fails when XDPGEN_REQUIRE_PRIVILEGED=1 (CI installs it).
func prometheusBinary(t *testing.T) string {
	t.Helper()
	netnstest.RequireCommand(t, "prometheus") // Debian's prometheus package; CI installs it
	p, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPrometheusScrapesRun: a real Prometheus server scrapes the manager and both nodes' agents (over HTTPS, with
// a service account token bound to the ClusterRole xdpgen-metrics-reader, as the chart's ServiceMonitor does)
// during a run of a mesh (each node sends to the other, which receives): the agents' counters end at the status's
// totals, sent and received, rate() gives the rate asked for, the manager's phase metric says Completed, every
// query of the dashboard whose metrics a udp run with receivers exports returns data, and the dashboard drawn from
// the run (docs/dashboard.png when XDPGEN_DASHBOARD_PNG names it: make dashboard-png) has data in every such panel.
func TestPrometheusScrapesRun(t *testing.T) {
	e := requireCluster(t)
	promBin := prometheusBinary(t)
	const (
		name    = "e2e-prometheus"
		packets = 300_000 // per node: 15 s
		rate    = 20_000  // per node
	)
	ctx := context.Background()
	dir := t.TempDir()

	// Prometheus's credentials: a service account allowed to get /metrics, and a token of it.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "e2e-prometheus"}}
	if _, err := e.clients.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-prometheus-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "xdpgen-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: sa.Name}},
	}
	if _, err := e.clients.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.clients.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
		_ = e.clients.CoreV1().ServiceAccounts(namespace).Delete(context.Background(), sa.Name, metav1.DeleteOptions{})
	})
	tr, err := e.clients.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa.Name,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(tr.Status.Token), 0o600); err != nil {
		t.Fatal(err)
	}

	// The targets: every node's agent (host network) and the manager pod.
	managers, err := e.clients.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=manager"})
	if err != nil || len(managers.Items) != 1 || managers.Items[0].Status.PodIP == "" {
		t.Fatalf("the manager pod: %v (%d pods)", err, len(managers.Items))
	}
	var agentTargets []string
	for _, node := range e.cluster.Nodes() {
		if node.IP == "" {
			agentTargets = append(agentTargets, "127.0.0.1:9441")
			continue
		}
		agentTargets = append(agentTargets, net.JoinHostPort(node.IP, "9441"))
	}
	targets, err := json.Marshal(agentTargets)
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
- job_name: xdpgen-agent
  honor_labels: true
  scheme: https
  tls_config: {insecure_skip_verify: true}
  authorization: {credentials_file: %s}
  static_configs: [{targets: %s}]
- job_name: xdpgen-manager
  honor_labels: true
  static_configs: [{targets: [%q]}]
`, tokenFile, targets, net.JoinHostPort(managers.Items[0].Status.PodIP, "8080"))
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	promAddr := l.Addr().String()
	_ = l.Close()
	prom := exec.Command(promBin, "--config.file="+configFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	prom.Stdout, prom.Stderr = log, log
	if err := prom.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = prom.Process.Kill()
		_ = prom.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("prometheus log:\n%s", out)
		}
	})
	api := newPromAPI(t, "http://"+promAddr)
	poll.Until(t, 30*time.Second, time.Second, "prometheus scrapes both targets", func() error {
		res, err := api.query(`up`, time.Now())
		if err != nil {
			return err
		}
		up := 0
		for _, r := range res {
			if r.value == 1 {
				up++
			}
		}
		if up != 1+len(agentTargets) {
			return fmt.Errorf("targets up: %+v", res)
		}
		return nil
	})

	nodes := len(agentTargets)
	e.applyTrafficGenerator(t, name, meshSpec(rate, packets))
	e.kubectlWait(t, name, xdpgenv1alpha1.ConditionComplete, 120*time.Second)
	tg := e.trafficGenerator(t, name)
	if tg.Status.StartTime == nil || tg.Status.CompletionTime == nil {
		t.Fatalf("status times %v, %v", tg.Status.StartTime, tg.Status.CompletionTime)
	}

	// The run's final counts are scraped: the agents' counters end where the status does, sent and received.
	sent := fmt.Sprintf(`xdpgen_agent_packets_total{namespace=%q, generator=%q, action=~"XDP_TX|XDP_REDIRECT"}`, namespace, name)
	received := fmt.Sprintf(`xdpgen_agent_received_packets_total{namespace=%q, generator=%q}`, namespace, name)
	if tg.Status.Totals.ReceivedPackets != tg.Status.Totals.Packets || tg.Status.Totals.Packets != int64(nodes*packets) {
		t.Errorf("status: %d sent, %d received, want %d each", tg.Status.Totals.Packets, tg.Status.Totals.ReceivedPackets, nodes*packets)
	}
	counted := map[string]int64{sent: tg.Status.Totals.Packets, received: tg.Status.Totals.ReceivedPackets}
	for series, status := range counted {
		poll.Until(t, 30*time.Second, time.Second, "the agents' final count scraped", func() error {
			res, err := api.query("sum("+series+")", time.Now())
			if err != nil {
				return err
			}
			if len(res) != 1 || int64(res[0].value) != status {
				return fmt.Errorf("sum(%s) = %+v, status %d packets", series, res, status)
			}
			return nil
		})
	}
	// The manager's metrics say Completed.
	poll.Until(t, 30*time.Second, time.Second, "the manager's phase metric", func() error {
		q := fmt.Sprintf(`xdpgen_trafficgenerator_phase{namespace=%q, name=%q, phase="Completed"}`, namespace, name)
		res, err := api.query(q, time.Now())
		if err != nil {
			return err
		}
		if len(res) != 1 || res[0].value != 1 {
			return fmt.Errorf("%s = %+v", q, res)
		}
		return nil
	})

	// Over the run, the counter went from 0 (before the first report) to the status's count exactly; increase()
	// says so too, give or take its extrapolation to the window's ends at the average slope: up to 1.1 scrape
	// intervals (1 s) at each end, over the samples' span (the window less those), so up to 2.2 / (window - 2) over
	// (CI saw 5.1 % with a 33 s window).
	end := tg.Status.CompletionTime.Add(3 * time.Second)
	window := int((end.Sub(tg.Status.StartTime.Time).Truncate(time.Second) + 10*time.Second).Seconds())
	for series, status := range counted {
		total := float64(status)
		for q, tolerance := range map[string]float64{
			fmt.Sprintf("sum(max_over_time(%[1]s[%[2]ds]) - min_over_time(%[1]s[%[2]ds]))", series, window): 0,
			fmt.Sprintf("sum(increase(%s[%ds]))", series, window):                                           0.01 + 2.2/float64(window-2),
		} {
			res, err := api.query(q, end)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 || res[0].value < total*(1-tolerance) || res[0].value > total*(1+tolerance) {
				t.Errorf("%s after the run = %+v, status %d packets: want within %g%%", q, res, status, 100*tolerance)
			}
			t.Logf("%s = %+v, status %d packets", q, res, status)
		}
	}

	// Mid-run, rate() gives the rate asked for: the agents' counters move with their reports, every 2 s, so a 10 s
	// window is within a report (4000 packets/s here) of the rate. The window ends where three quarters were sent,
	// so that it starts after the senders did (they first wait for the receivers, within the status's run).
	var mid time.Time
	sums, err := api.queryRange("sum("+sent+")", tg.Status.StartTime.Time, tg.Status.CompletionTime.Time, time.Second)
	if err != nil || len(sums) != 1 {
		t.Fatalf("sum(%s) over the run: %v, %d series", sent, err, len(sums))
	}
	for _, p := range sums[0].Points {
		if p.V >= 0.75*float64(tg.Status.Totals.Packets) {
			mid = p.T
			break
		}
	}
	res, err := api.query("sum(rate("+sent+"[10s]))", mid)
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(nodes * rate); len(res) != 1 || res[0].value < want*3/4 || res[0].value > want*5/4 {
		t.Errorf("sum(rate(...[10s])) at mid-run = %+v, want about %g", res, want)
		for _, q := range []string{sent + "[40s]", "scrape_duration_seconds[40s]", "up[40s]"} {
			t.Logf("%s at the end of the run: %s", q, api.raw(q, tg.Status.CompletionTime.Add(5*time.Second)))
		}
	}
	t.Logf("mid-run rate %+v packets/s; status %d packets, %s", res, tg.Status.Totals.Packets, tg.Status.Rate)

	// The dashboard's queries, at the end of the run, return data when their metrics are a udp run's with
	// receivers (the counters of what did not go, aborted frames and egress drops, are there at 0).
	exported := []string{"xdpgen_agent_packets_total", "xdpgen_agent_bytes_total", "xdpgen_agent_egress_dropped_packets_total",
		"xdpgen_agent_received_", "xdpgen_agent_lost_packets", "xdpgen_agent_rtt_seconds", "xdpgen_trafficgenerator_", "xdpgen_build_info"}
	at := tg.Status.CompletionTime.Add(2 * time.Second)
	checked := 0
	for _, q := range monitoring.Dashboards(t) {
		if !usesOnly(q.PromQL, exported) {
			continue
		}
		checked++
		// The dashboard's rate windows ($__rate_interval, 5m here) reach back before this run: fine, it is the first.
		res, err := api.query(q.PromQL, at)
		if err != nil {
			t.Errorf("%s: %s: %v", q.Where, q.PromQL, err)
			continue
		}
		if len(res) == 0 {
			t.Errorf("%s: %s returns no data", q.Where, q.PromQL)
		}
	}
	if checked < 10 {
		t.Errorf("only %d dashboard queries checked against the run", checked)
	}

	// The dashboard drawn from the run, over its time range, as Grafana would with a 1 s scrape interval: every
	// panel whose metrics the run exports has data.
	// The range ends a rate window after the run, for the rates to come down.
	from, to := tg.Status.StartTime.Add(-5*time.Second), tg.Status.CompletionTime.Add(12*time.Second)
	time.Sleep(time.Until(to.Add(2 * time.Second)))
	panels := monitoring.Panels(t, monitoring.Intervals{Rate: "10s", Interval: "1s", Range: fmt.Sprintf("%ds", int(to.Sub(from).Seconds()))})
	picture := os.Getenv("XDPGEN_DASHBOARD_PNG") // make dashboard-png: docs/dashboard.png
	if picture == "" {
		picture = filepath.Join(dir, "dashboard.png")
	}
	f, err := os.Create(picture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	title := fmt.Sprintf("xdpgen's Grafana dashboard, drawn from Prometheus: a mesh of %d nodes, each sending %d packets/s to the other", nodes, rate)
	withData, err := monitoring.Render(f, title, panels, func(q string) ([]monitoring.Series, error) {
		return api.queryRange(q, from, to, time.Second)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range panels {
		if !slices.ContainsFunc(p.Targets, func(target monitoring.Target) bool { return !usesOnly(target.PromQL, exported) }) &&
			!slices.Contains(withData, p.Title) {
			t.Errorf("the dashboard's panel %q has no data over the run", p.Title)
		}
	}
	t.Logf("the dashboard drawn in %s: panels with data %q", picture, withData)
}

// usesOnly reports whether every xdpgen metric promql names starts with one of prefixes.
func usesOnly(promql string, prefixes []string) bool {
	for _, name := range monitoring.Names(promql) {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			return false
		}
	}
	return true
}

// promAPI queries a Prometheus server through client_golang's API client.
type promAPI struct{ v1 promv1.API }

func newPromAPI(t *testing.T, address string) *promAPI {
	t.Helper()
	c, err := promapi.NewClient(promapi.Config{Address: address})
	if err != nil {
		t.Fatal(err)
	}
	return &promAPI{v1: promv1.NewAPI(c)}
}

type sample struct {
	labels map[string]string
	value  float64
}

// raw is the answer to a query, as Prometheus' model prints it: for a failing test's log.
func (p *promAPI) raw(q string, at time.Time) string {
	v, _, err := p.v1.Query(context.Background(), q, at)
	if err != nil {
		return err.Error()
	}
	return v.String()
}

// query evaluates an instant query at a time, returning its vector (or its scalar as one sample).
func (p *promAPI) query(q string, at time.Time) ([]sample, error) {
	v, _, err := p.v1.Query(context.Background(), q, at)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	switch v := v.(type) {
	case model.Vector:
		var out []sample
		for _, s := range v {
			out = append(out, sample{labels: labelsOf(s.Metric), value: float64(s.Value)})
		}
		return out, nil
	case *model.Scalar:
		return []sample{{value: float64(v.Value)}}, nil
	}
	return nil, fmt.Errorf("query %s: result type %s", q, v.Type())
}

// queryRange evaluates a query over a time range, returning its matrix without the points that are not a number
// (histogram_quantile over no samples).
func (p *promAPI) queryRange(q string, from, to time.Time, step time.Duration) ([]monitoring.Series, error) {
	v, _, err := p.v1.QueryRange(context.Background(), q, promv1.Range{Start: from, End: to, Step: step})
	if err != nil {
		return nil, fmt.Errorf("query_range %s: %w", q, err)
	}
	matrix, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("query_range %s: result type %s", q, v.Type())
	}
	var out []monitoring.Series
	for _, r := range matrix {
		s := monitoring.Series{Labels: labelsOf(r.Metric)}
		for _, pt := range r.Values {
			if !math.IsNaN(float64(pt.Value)) {
				s.Points = append(s.Points, monitoring.Point{T: pt.Timestamp.Time(), V: float64(pt.Value)})
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func labelsOf(m model.Metric) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[string(k)] = string(v)
	}
	return out
}
