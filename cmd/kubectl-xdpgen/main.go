// Command kubectl-xdpgen is a kubectl plugin (kubectl xdpgen ...) that reads xdpgen's TrafficGenerators and their
// NodeReports: what a run sent and what arrived on each path.
package main

import (
	"os"

	"github.com/xdpgen/xdpgen/cmd/kubectl-xdpgen/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
