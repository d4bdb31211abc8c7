// Command xdpgen generates packets with XDP live frames on one host, no cluster needed.
package main

import (
	"os"

	"github.com/xdpgen/xdpgen/cmd/xdpgen/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
