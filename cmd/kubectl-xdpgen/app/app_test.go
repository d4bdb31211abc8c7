package app

import (
	"bytes"
	"strings"
	"testing"

	"github.com/xdpgen/xdpgen/cmd/internal/version"
)

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"--version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--version exited %d: %s", code, stderr.String())
	}
	if want := "kubectl-xdpgen " + version.String() + "\n"; stdout.String() != want {
		t.Errorf("--version printed %q, want %q", stdout.String(), want)
	}
}

// TestBadOutput: an unknown --output is refused before the plugin looks for a cluster.
func TestBadOutput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main([]string{"--kubeconfig", "/nonexistent", "results", "mesh", "-o", "yaml"}, &stdout, &stderr)
	if want := `kubectl-xdpgen: --output "yaml": use one of table, wide, json`; code == 0 || !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("-o yaml: exit %d, stderr %q; want a failure starting with %q", code, stderr.String(), want)
	}
}
