package version

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/xdpgen/xdpgen/test/monitoring"
)

func TestString(t *testing.T) {
	defer func(v, c, d string) { Version, Commit, BuildDate = v, c, d }(Version, Commit, BuildDate)
	if want := "dev (commit unknown, built unknown)"; String() != want {
		t.Errorf("unstamped String() = %q, want %q", String(), want)
	}
	Version, Commit, BuildDate = "v0.1.0", "1a2b3c4", "2026-11-29T00:00:00Z"
	if want := "v0.1.0 (commit 1a2b3c4, built 2026-11-29T00:00:00Z)"; String() != want {
		t.Errorf("String() = %q, want %q", String(), want)
	}
}

// TestMakeStampsEveryBinary builds the binaries as the Makefile does and checks that each prints what was stamped:
// a wrong package path in the Makefile's -X flags would silently leave the defaults.
func TestMakeStampsEveryBinary(t *testing.T) {
	root, bin := filepath.Join("..", "..", ".."), t.TempDir()
	runMake(t, root, nil, "xdpgen", "manager", "agent", "kubectl-xdpgen", "BIN="+bin,
		"VERSION=v1.2.3-test", "COMMIT=0123abc", "BUILD_DATE=2026-01-02T03:04:05Z")
	for _, name := range []string{"xdpgen", "manager", "agent", "kubectl-xdpgen"} {
		requireVersion(t, filepath.Join(bin, name), name+" v1.2.3-test (commit 0123abc, built 2026-01-02T03:04:05Z)")
	}

	// Unset, the commit comes from git and the build date from SOURCE_DATE_EPOCH.
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD (the Makefile stamps the commit from git, so make test runs in a checkout): %v", err)
	}
	runMake(t, root, []string{"SOURCE_DATE_EPOCH=86400"}, "xdpgen", "BIN="+bin, "VERSION=v1.2.3-test")
	requireVersion(t, filepath.Join(bin, "xdpgen"),
		"xdpgen v1.2.3-test (commit "+strings.TrimSpace(string(head))+", built 1970-01-02T00:00:00Z)")
}

func runMake(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-s", "-C", dir}, args...)...)
	// Only the test stamps the binaries, never this process's environment.
	for _, kv := range cmd.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "VERSION", "COMMIT", "BUILD_DATE", "SOURCE_DATE_EPOCH":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func requireVersion(t *testing.T, binary, want string) {
	t.Helper()
	out, err := exec.Command(binary, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", binary, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("%s --version printed %q, want %q", binary, got, want)
	}
}

// TestBuildInfo: xdpgen_build_info is 1 with the stamped version and commit, and is what the dashboard uses.
func TestBuildInfo(t *testing.T) {
	defer func(v, c string) { Version, Commit = v, c }(Version, Commit)
	Version, Commit = "v0.1.0", "1a2b3c4"
	want := `
# HELP xdpgen_build_info Always 1, labelled with the version and the commit the binary was built from.
# TYPE xdpgen_build_info gauge
xdpgen_build_info{commit="1a2b3c4",version="v0.1.0"} 1
`
	if err := testutil.CollectAndCompare(BuildInfo(), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(BuildInfo())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if monitoring.CheckExported(t, "xdpgen_build_info", families) == 0 {
		t.Error("the dashboard uses no xdpgen_build_info")
	}
}
