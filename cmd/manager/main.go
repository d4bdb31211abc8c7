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

// Command manager runs the xdpgen controller: for each TrafficGenerator it runs the node agents as a DaemonSet
// and sums their NodeReports into the TrafficGenerator's status. Flags and wiring only; the logic is in
// controllers/.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/controllers"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

func run() error {
	agent := controllers.DefaultAgentConfig()
	if img := os.Getenv("XDPGEN_AGENT_IMAGE"); img != "" {
		agent.Image = img
	}
	var (
		metricsAddr, probeAddr  string
		leaderElect             bool
		leaderElectionNS        string
		pullPolicy              string
		healthPort, metricsPort int
		statusInterval          = controllers.DefaultStatusInterval
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one of several managers reconciles.")
	flag.StringVar(&leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease; empty: the manager's own namespace (in a cluster).")
	flag.StringVar(&agent.Image, "agent-image", agent.Image, "Container image of the node agent (default from $XDPGEN_AGENT_IMAGE).")
	flag.StringVar(&pullPolicy, "agent-image-pull-policy", string(corev1.PullIfNotPresent), "Pull policy of the agent image: Always, IfNotPresent or Never.")
	flag.StringVar(&agent.ServiceAccount, "agent-service-account", agent.ServiceAccount, "Service account of the agent pods, in each TrafficGenerator's namespace.")
	flag.IntVar(&healthPort, "agent-health-port", int(agent.HealthPort), "Host port of the agents' /healthz and /readyz (agents use the host network).")
	flag.IntVar(&metricsPort, "agent-metrics-port", int(agent.MetricsPort), "Host port of the agents' metrics.")
	flag.Func("agent-env", "NAME=VALUE added to the agents' environment (repeatable), such as KUBERNETES_SERVICE_HOST=127.0.0.1 where host-network pods cannot reach the kubernetes Service.", func(v string) error {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return fmt.Errorf("%q: want NAME=VALUE", v)
		}
		agent.Env = append(agent.Env, corev1.EnvVar{Name: name, Value: value})
		return nil
	})
	flag.BoolVar(&agent.Privileged, "agent-privileged", false, "Run agents privileged instead of with CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON (for container runtimes that do not know CAP_BPF).")
	flag.DurationVar(&statusInterval, "status-interval", statusInterval, "Least time between two status writes of one TrafficGenerator.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	switch p := corev1.PullPolicy(pullPolicy); p {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		agent.ImagePullPolicy = p
	default:
		return fmt.Errorf("--agent-image-pull-policy=%s: want Always, IfNotPresent or Never", pullPolicy)
	}
	for name, port := range map[string]int{"--agent-health-port": healthPort, "--agent-metrics-port": metricsPort} {
		if port < 1 || port > 65535 {
			return fmt.Errorf("%s=%d: want a port in 1..65535", name, port)
		}
	}
	agent.HealthPort, agent.MetricsPort = int32(healthPort), int32(metricsPort)
	if agent.Image == "" {
		return fmt.Errorf("--agent-image is empty: give the agent's container image")
	}
	if statusInterval <= 0 {
		return fmt.Errorf("--status-interval=%s: want a positive duration", statusInterval)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(xdpgenv1alpha1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                        scheme,
		Cache:                         controllers.CacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "xdpgen-manager.xdpgen.io",
		LeaderElectionNamespace:       leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	r := &controllers.TrafficGeneratorReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Recorder:       mgr.GetEventRecorder("xdpgen-manager"),
		Agent:          agent,
		StatusInterval: statusInterval,
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up the TrafficGenerator controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add readiness check: %w", err)
	}
	ctrl.Log.WithName("setup").Info("starting manager", "agentImage", agent.Image, "statusInterval", statusInterval)
	return mgr.Start(ctx)
}
