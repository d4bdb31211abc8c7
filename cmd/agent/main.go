// Command agent is xdpgen's node agent, one per node (a DaemonSet): it runs every TrafficGenerator whose node
// selector picks its node, sending live frames as each asks, and reports each run in a NodeReport of its own.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdpgen/xdpgen/agent"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/cmd/internal/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

func run() error {
	opts := agent.Options{
		NodeName: os.Getenv("NODE_NAME"),
		PodName:  os.Getenv("POD_NAME"),
	}
	var metricsAddr, probeAddr string
	var secureMetrics bool
	flag.StringVar(&opts.NodeName, "node-name", opts.NodeName, "This node's name (default $NODE_NAME, from the downward API).")
	flag.DurationVar(&opts.ReportInterval, "report-interval", agent.DefaultReportInterval, "How often to write a run's NodeReport while sending.")
	flag.StringVar(&opts.PinDir, "pin-dir", agent.DefaultPinDir, "Directory on a bpffs where runs pin their counters, so that "+
		"a restarted agent resumes them exactly; empty pins nothing.")
	// The agent uses the host's network: what it serves, it serves on the node's addresses. The probes are for the
	// kubelet, on the node itself; the metrics are for Prometheus, which must authenticate.
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":9441", "Address of the Prometheus metrics endpoint; 0 disables it.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve the metrics over HTTPS to clients whose token the API "+
		"server authenticates (TokenReview) and allows to get /metrics (SubjectAccessReview); false: plain HTTP to anyone.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", "127.0.0.1:9440", "Address of the /healthz and /readyz endpoints "+
		"(unauthenticated: keep them on the node's loopback, where the kubelet probes them).")
	printVersion := version.Flag(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if *printVersion {
		fmt.Println("agent", version.String())
		return nil
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	ctrlmetrics.Registry.MustRegister(version.BuildInfo())
	if opts.NodeName == "" {
		return errors.New("--node-name is required")
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(xdpgenv1alpha1.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOptions(metricsAddr, secureMetrics),
		HealthProbeBindAddress: probeAddr,
		// The agent caches the TrafficGenerators (few, in every namespace) and its own Node, no other. Reports are
		// written, never cached; a namespace's TrafficGeneratorPolicy is read only for a run with a special
		// address (RBAC: get).
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Node{}: {Field: fields.OneTermEqualSelector("metadata.name", opts.NodeName)},
			},
		},
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&xdpgenv1alpha1.NodeReport{},
			&xdpgenv1alpha1.TrafficGeneratorPolicy{}}}},
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	a, err := agent.New(opts, mgr.GetClient(), mgr.GetAPIReader())
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := a.SetupWithManager(mgr); err != nil {
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

// metricsOptions serves the metrics at addr: over HTTPS (a self-signed certificate) to authenticated and authorized
// clients only when secure, as kubebuilder's scaffold serves a manager's.
func metricsOptions(addr string, secure bool) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: addr, SecureServing: secure}
	if secure {
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return opts
}
