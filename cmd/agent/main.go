// Command agent is xdpgen's node agent, run by each TrafficGenerator's DaemonSet: it sends live frames on its
// node as the TrafficGenerator asks and reports in its own NodeReport.
package main

import (
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdpgen/xdpgen/agent"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

func run() error {
	opts := agent.Options{
		Namespace: os.Getenv("POD_NAMESPACE"),
		NodeName:  os.Getenv("NODE_NAME"),
		PodName:   os.Getenv("POD_NAME"),
	}
	var metricsAddr, probeAddr string
	flag.StringVar(&opts.Generator, "generator", "", "Name of the TrafficGenerator to run (required).")
	flag.StringVar(&opts.Namespace, "namespace", opts.Namespace, "Namespace of the TrafficGenerator (default $POD_NAMESPACE).")
	flag.StringVar(&opts.NodeName, "node-name", opts.NodeName, "This node's name (default $NODE_NAME, from the downward API).")
	flag.DurationVar(&opts.ReportInterval, "report-interval", agent.DefaultReportInterval, "How often to write this node's NodeReport while sending.")
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":9441", "Address of the Prometheus metrics endpoint; 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":9440", "Address of the /healthz and /readyz endpoints.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	for name, v := range map[string]string{"--generator": opts.Generator, "--namespace": opts.Namespace, "--node-name": opts.NodeName} {
		if v == "" {
			return fmt.Errorf("%s is required", name)
		}
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(xdpgenv1alpha1.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		// The agent watches one object: its TrafficGenerator. Reports are written, never cached.
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{opts.Namespace: {}},
			ByObject: map[client.Object]cache.ByObject{
				&xdpgenv1alpha1.TrafficGenerator{}: {Field: fields.OneTermEqualSelector("metadata.name", opts.Generator)},
			},
		},
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&xdpgenv1alpha1.NodeReport{}}}},
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if err := agent.New(opts, mgr.GetClient()).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}
