// Package selfexec lets a command's test binary double as the command, so that tests exercise main's flags and
// wiring as a process without building another binary: TestMain calls Main, and the tests start the binary
// again with Command.
package selfexec

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// runMain set to 1 in a test binary's environment makes it run the command's main instead of the tests.
const runMain = "XDPGEN_TEST_RUN_MAIN"

// Main is a TestMain: the command's main when Command started the binary, the tests otherwise.
func Main(m *testing.M, main func()) {
	if os.Getenv(runMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Command is the test binary to run as the command with args; its output and errors collect in the Output.
func Command(args ...string) (*exec.Cmd, *Output) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMain+"=1")
	out := &Output{}
	cmd.Stdout, cmd.Stderr = out, out
	return cmd, out
}

// Output collects a command's output while the test reads it.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
