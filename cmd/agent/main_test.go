package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/xdpgen/xdpgen/test/k8senv"
	"github.com/xdpgen/xdpgen/test/manifest"
	"github.com/xdpgen/xdpgen/test/poll"
	"github.com/xdpgen/xdpgen/test/selfexec"
)

// The test binary doubles as the agent (selfexec), so that the tests exercise main's flags and wiring as a process.
func TestMain(m *testing.M) { selfexec.Main(m, main) }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestAgentEndpoints runs the agent as a process against a real API server, with its default flags but the
// addresses: its health probes answer anyone who reaches them (so by default they listen on the node's loopback
// only), and its metrics, on every node address by default, answer over HTTPS only a token the API server
// authenticates and that may get /metrics (the ClusterRole xdpgen-metrics-reader).
func TestAgentEndpoints(t *testing.T) {
	if def := flagDefault(t, "health-probe-bind-address"); !strings.HasPrefix(def, "127.0.0.1:") {
		t.Errorf("--health-probe-bind-address defaults to %s: the unauthenticated probes must stay on the node's loopback", def)
	}
	env := k8senv.StartForTest(t, filepath.Join("..", ".."))
	ctx := context.Background()
	admin, err := client.New(env.Config, client.Options{Scheme: k8senv.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "agent-node"}}); err != nil {
		t.Fatal(err)
	}
	kubeconfigPath := env.UserKubeconfig(t, envtest.User{Name: "agent", Groups: []string{"system:masters"}})

	health, metrics := freePort(t), freePort(t)
	cmd, out := selfexec.Command("--kubeconfig="+kubeconfigPath, "--node-name=agent-node", "--pin-dir=",
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", health), fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metrics))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("agent output:\n%s", out)
		}
	})

	for _, path := range []string{"/healthz", "/readyz"} {
		url := fmt.Sprintf("http://127.0.0.1:%d%s", health, path)
		poll.Until(t, 30*time.Second, 100*time.Millisecond, "GET "+url, func() error {
			code, err := get(url, "")
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("status %d", code)
			}
			return err
		})
	}

	// Prometheus's service account, before and after it is bound to the metrics reader role.
	cs := kubernetes.NewForConfigOrDie(env.Config)
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "prometheus"}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "prometheus",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tr.Status.Token
	url := fmt.Sprintf("https://127.0.0.1:%d/metrics", metrics)
	poll.Until(t, 30*time.Second, 100*time.Millisecond, "GET "+url+" without a token refused", func() error {
		code, err := get(url, "")
		if err == nil && code != http.StatusUnauthorized {
			err = fmt.Errorf("status %d, want %d", code, http.StatusUnauthorized)
		}
		return err
	})
	if code, err := get(url, token); err != nil || code != http.StatusForbidden {
		t.Errorf("GET %s with a token not allowed /metrics: status %d (%v), want %d", url, code, err, http.StatusForbidden)
	}
	var role string
	for _, o := range manifest.DecodeFile(t, filepath.Join("..", "..", "config", "rbac", "metrics_reader_role.yaml")) {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		role = o.GetName()
	}
	if err := admin.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-metrics"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "prometheus"}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
	}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, 100*time.Millisecond, "GET "+url+" with a token bound to "+role, func() error {
		code, err := get(url, token)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d", code)
		}
		return err
	})
}

// flagDefault is the default of one of main's flags, as the agent's --help prints it.
func flagDefault(t *testing.T, name string) string {
	t.Helper()
	cmd, out := selfexec.Command("--help")
	_ = cmd.Run() // --help exits 2
	help := out.String()
	lines := strings.Split(help, "\n")
	for i, l := range lines {
		if strings.Contains(l, "-"+name+" ") && i+1 < len(lines) {
			text := l + lines[i+1]
			if _, def, ok := strings.Cut(text, `(default "`); ok {
				return strings.SplitN(def, `"`, 2)[0]
			}
		}
	}
	t.Fatalf("no default of --%s in the agent's --help:\n%s", name, help)
	return ""
}

// get returns the status of a GET of url, with token as a bearer token when it is not empty. The agent's metrics
// certificate is self-signed.
func get(url, token string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a self-signed certificate
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}
