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

// Command manager runs the xdpgen controller: it sums the NodeReports of each TrafficGenerator's nodes (written by
// the xdpgen agent on each node, a DaemonSet of its own) into the TrafficGenerator's status. Flags and wiring only; the logic is in
// controllers/.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/cmd/internal/version"
	"github.com/xdpgen/xdpgen/controllers"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		metricsAddr, probeAddr string
		leaderElect            bool
		leaderElectionNS       string
		statusInterval         = controllers.DefaultStatusInterval
		nodeLostTimeout        = controllers.DefaultNodeLostTimeout
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one of several managers reconciles.")
	flag.StringVar(&leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease; empty: the manager's own namespace (in a cluster).")
	flag.DurationVar(&statusInterval, "status-interval", statusInterval, "Least time between two status writes of one TrafficGenerator.")
	flag.DurationVar(&nodeLostTimeout, "node-lost-timeout", nodeLostTimeout, "How long a node of a run may go without reporting (since the run began, or since its last report) before the run counts it lost and fails.")
	printVersion := version.Flag(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if *printVersion {
		fmt.Println("manager", version.String())
		return nil
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	ctrlmetrics.Registry.MustRegister(version.BuildInfo())

	for name, d := range map[string]time.Duration{"--status-interval": statusInterval, "--node-lost-timeout": nodeLostTimeout} {
		if d <= 0 {
			return fmt.Errorf("%s=%s: want a positive duration", name, d)
		}
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(xdpgenv1alpha1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                        scheme,
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
		Client:          mgr.GetClient(),
		Recorder:        mgr.GetEventRecorder("xdpgen-manager"),
		StatusInterval:  statusInterval,
		NodeLostTimeout: nodeLostTimeout,
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
	ctrl.Log.WithName("setup").Info("starting manager", "version", version.String(), "statusInterval", statusInterval, "nodeLostTimeout", nodeLostTimeout)
	return mgr.Start(ctx)
}
