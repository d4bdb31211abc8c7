// Package k8senv starts a real control plane for tests: etcd and kube-apiserver built by `make envtest-assets`,
// with xdpgen's CRDs installed, through controller-runtime's envtest.
package k8senv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/k8sversion"
)

// Scheme knows the built-in kinds and xdpgen's.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(xdpgenv1alpha1.AddToScheme(Scheme))
}

// ErrMissing: the binaries are not built.
var ErrMissing = errors.New("control plane binaries missing")

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	Config *rest.Config
}

// Start starts a control plane from KUBEBUILDER_ASSETS (default <repoRoot>/bin/k8s/<k8sversion.Version>) with the CRDs
// of <repoRoot>/config/crd/bases. It returns an error wrapping ErrMissing when the binaries are not there.
func Start(repoRoot string) (*Env, error) {
	return start(repoRoot, filepath.Join(repoRoot, "config", "crd", "bases"))
}

// StartWithoutCRDs starts a control plane as Start does, with no CRDs: for what installs them itself (the chart).
func StartWithoutCRDs(repoRoot string) (*Env, error) {
	return start(repoRoot, "")
}

// StartForTest starts a control plane with the CRDs for test t alone, stopped when t ends; Require decides what
// its absence means.
func StartForTest(t testing.TB, repoRoot string) *Env {
	t.Helper()
	env, err := Start(repoRoot)
	Require(t, env, err)
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop the control plane: %v", err)
		}
	})
	return env
}

// UserKubeconfig adds user to the control plane and writes a kubeconfig of theirs for t, returning its path: for
// the processes a test runs (kubectl, helm, the agent and the manager).
func (e *Env) UserKubeconfig(t testing.TB, user envtest.User) string {
	t.Helper()
	u, err := e.AddUser(user, nil)
	if err != nil {
		t.Fatalf("add user %s: %v", user.Name, err)
	}
	kubeconfig, err := u.KubeConfig()
	if err != nil {
		t.Fatalf("the kubeconfig of user %s: %v", user.Name, err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// start starts the control plane, installing the CRDs of crdDir unless it is empty.
func start(repoRoot, crdDir string) (*Env, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(repoRoot, "bin", "k8s", k8sversion.Version)
	}
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return nil, fmt.Errorf("%w: no %s in KUBEBUILDER_ASSETS=%s (make envtest-assets builds it)", ErrMissing, bin, assets)
		}
	}
	abs, err := filepath.Abs(assets)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{BinaryAssetsDirectory: abs}
	if crdDir != "" {
		env.CRDDirectoryPaths = []string{crdDir}
		env.ErrorIfCRDPathMissing = true
	}
	cfg, err := env.Start()
	if err != nil {
		// Start leaves etcd and kube-apiserver running when it fails after starting them.
		_ = env.Stop()
		return nil, fmt.Errorf("start the control plane: %w", err)
	}
	return &Env{Environment: env, Config: cfg}, nil
}

// Required reports whether the environment asks every test to run rather than skip for want of something
// (CI sets XDPGEN_REQUIRE_ENVTEST=1 and XDPGEN_REQUIRE_PRIVILEGED=1).
func Required() bool {
	return os.Getenv("XDPGEN_REQUIRE_ENVTEST") == "1" || os.Getenv("XDPGEN_REQUIRE_PRIVILEGED") == "1"
}

// Missing ends a test that lacks something it needs (a binary, a tool): a failure when Required, else a skip
// whose message says why.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatal(msg)
	}
	t.Skip(msg + " (set XDPGEN_REQUIRE_ENVTEST=1 to make this a failure)")
}

// Require skips a test when the control plane could not start because the binaries are missing, unless
// XDPGEN_REQUIRE_ENVTEST=1 or XDPGEN_REQUIRE_PRIVILEGED=1 (CI), which make that a failure.
func Require(t testing.TB, env *Env, startErr error) {
	t.Helper()
	switch {
	case env != nil:
		return
	case errors.Is(startErr, ErrMissing) && !Required():
		t.Skipf("%v (set XDPGEN_REQUIRE_ENVTEST=1 to make this a failure)", startErr)
	default:
		t.Fatalf("no control plane: %v", startErr)
	}
}
