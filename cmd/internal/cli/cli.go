// Package cli runs the command lines built with cobra (xdpgen and kubectl-xdpgen) as processes: one way to cancel on
// a signal, print an error and choose the exit code.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/xdpgen/xdpgen/cmd/internal/version"
)

// Main runs root with args until it ends or SIGINT or SIGTERM cancels its context, and returns the process exit
// code: 0, or 1 with the error printed to stderr after the command's name.
func Main(root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", root.Name(), err)
		return 1
	}
	return 0
}

// Root is a root command named use: --version prints its name and version.String(), and errors are printed once,
// by Main, without the usage.
func Root(use, short, long string) *cobra.Command {
	root := &cobra.Command{
		Use:           use,
		Short:         short,
		Long:          long,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	return root
}
