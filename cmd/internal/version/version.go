// Package version holds what a binary says about itself with --version. The Makefile stamps the variables at
// build time (go build -ldflags "-X github.com/xdpgen/xdpgen/cmd/internal/version.Version=..."); a plain
// `go build` keeps the defaults.
package version

import (
	"flag"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	// Version is the release, from `git describe --tags --always --dirty`.
	Version = "dev"
	// Commit is the full commit hash the binary was built from.
	Commit = "unknown"
	// BuildDate is when the binary was built, in UTC RFC 3339 (or SOURCE_DATE_EPOCH's time, for reproducible builds).
	BuildDate = "unknown"
)

// String is the version, the commit and the build date on one line, such as
// "v0.1.0 (commit 1a2b3c4, built 2026-11-29T00:00:00Z)".
func String() string {
	return fmt.Sprintf("%s (commit %s, built %s)", Version, Commit, BuildDate)
}

// Flag registers --version on a command's flag set; when it is set after parsing, the command prints
// `<name> <String()>` and exits 0.
func Flag(fs *flag.FlagSet) *bool {
	return fs.Bool("version", false, "Print the version, commit and build date, and exit.")
}

// BuildInfo is the metric xdpgen_build_info{version,commit}, always 1, as Prometheus' and Kubernetes' own
// *_build_info: a query joins it on the instance to tell which release each process runs.
func BuildInfo() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "xdpgen_build_info",
		Help:        "Always 1, labelled with the version and the commit the binary was built from.",
		ConstLabels: prometheus.Labels{"version": Version, "commit": Commit},
	}, func() float64 { return 1 })
}
