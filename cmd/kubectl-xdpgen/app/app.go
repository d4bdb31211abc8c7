// Package app is the kubectl plugin kubectl-xdpgen: it reads TrafficGenerators and their NodeReports from the
// cluster kubectl points at and prints what a run sent and what arrived. It reads the API only, and imports no eBPF.
package app

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/cmd/internal/cli"
)

// Main runs the plugin and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return cli.Main(NewRootCommand(), args, stdout, stderr)
}

// NewRootCommand is `kubectl xdpgen` with kubectl's connection flags (--kubeconfig, --context, -n, ...).
func NewRootCommand() *cobra.Command {
	kube := genericclioptions.NewConfigFlags(true)
	root := cli.Root("kubectl-xdpgen", "Read xdpgen's TrafficGenerators: what a run sent, and what arrived on each path",
		"kubectl xdpgen reads xdpgen's TrafficGenerators and their NodeReports from the cluster kubectl points\n"+
			"at. Install it by putting the kubectl-xdpgen binary on your PATH: kubectl then runs it as `kubectl xdpgen`.")
	root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl xdpgen"}
	// A kubectl plugin completes through kubectl (a kubectl_complete-xdpgen script), not its own scripts.
	root.CompletionOptions = cobra.CompletionOptions{DisableDefaultCmd: true}
	kube.AddFlags(root.PersistentFlags())
	root.AddCommand(newResultsCommand(kube))
	return root
}

func newResultsCommand(kube *genericclioptions.ConfigFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "results <name>",
		Short: "Print a TrafficGenerator's totals and every path of its sender x receiver matrix",
		Long: "results prints a TrafficGenerator's phase and totals (sent, received, lost, loss ratio, the run's\n" +
			"round-trip time percentiles), then every path from a sender to a receiver, sorted by sender then\n" +
			"receiver, from the NodeReports of the generator's current generation. A path is settled once its\n" +
			"sender finished and the receivers' drain time passed; until then its loss counts the gaps in the\n" +
			"sequence numbers seen so far. A generator without receivers has no paths: results prints what each\n" +
			"node sent.\n\n" +
			"-o json prints the same as one JSON object whose fields are only ever added to, never renamed.",
		Example: "  kubectl xdpgen results mesh -n load\n" +
			"  kubectl xdpgen results mesh -o wide\n" +
			"  kubectl xdpgen results mesh -o json | jq '.paths[] | select(.lostPackets > 0)'",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeGenerator(kube),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(formats, format) {
				return fmt.Errorf("--output %q: use one of %s", format, strings.Join(formats, ", "))
			}
			c, namespace, err := clientFor(kube)
			if err != nil {
				return err
			}
			res, err := fetchResults(cmd.Context(), c, namespace, args[0])
			if err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), res, format)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", formatTable, "output format: "+strings.Join(formats, ", "))
	return cmd
}

// completeGenerator offers the names of the namespace's TrafficGenerators for the <name> argument.
func completeGenerator(kube *genericclioptions.ConfigFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, namespace, err := clientFor(kube)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var list xdpgenv1alpha1.TrafficGeneratorList
		if err := c.List(cmd.Context(), &list, client.InNamespace(namespace)); err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var names []cobra.Completion
		for _, tg := range list.Items {
			if strings.HasPrefix(tg.Name, toComplete) {
				names = append(names, tg.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// clientFor is a client of the cluster kube's flags pick, and the namespace they pick (the context's, or -n).
func clientFor(kube *genericclioptions.ConfigFlags) (client.Client, string, error) {
	namespace, _, err := kube.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	cfg, err := kube.ToRESTConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(xdpgenv1alpha1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", fmt.Errorf("connect to the cluster at %s: %w", cfg.Host, err)
	}
	return c, namespace, nil
}
