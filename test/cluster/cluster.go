/*
Copyright 2026 The xdpgen Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package cluster runs a Kubernetes of one or two nodes on this host for the end-to-end tests and the demo: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and a kubelet per node built from the pinned
// k8s.io/kubernetes (make k8s-bins), Debian's containerd (one per node) and CNI plugins, images imported from
// tarballs (nothing is pulled). The first node is the host itself; the second lives in network and mount
// namespaces of its own (Node).
//
// Everything it writes lives in one run folder. What it cannot keep there (sysctls, iptables chains, cgroups,
// network namespaces, the second node's veth, the CNI bridge, a few fixed paths) it records before it starts
// anything, and Down puts back, also after a failed Up or a killed harness: Down reads the record from the run
// folder, and is a no-op the second time.
package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options configure a cluster. The zero value of each field means its default.
type Options struct {
	// Dir is the run folder (default /run/xdpgen-cluster).
	Dir string `json:"dir"`
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubelet.
	BinDir string `json:"binDir"`
	// Images are image tarballs (docker or OCI archives) imported into containerd for the kubelet.
	Images []string `json:"images"`
	// NodeName is the first node's name (default: this host's name, which must resolve to 127.0.0.1 for
	// `kubectl logs` on a single-node cluster). The second node is node2.
	NodeName string `json:"nodeName"`
	// Nodes is how many nodes: 1 or 2 (default 2).
	Nodes int `json:"nodes"`
	// APIServerPort is the API server's port on 127.0.0.1 (default 6443).
	APIServerPort int `json:"apiServerPort"`
	// PodCIDR is the /24 of the first node's CNI bridge (default 10.244.0.0/24; the second node's is the next
	// one); Bridge its name on every node (default xdpgen-cni0).
	PodCIDR string `json:"podCIDR"`
	Bridge  string `json:"bridge"`
	// InstallPackages installs the Debian packages the cluster needs when they are missing.
	InstallPackages bool `json:"installPackages"`
	// Log receives progress (default os.Stderr).
	Log io.Writer `json:"-"`
}

// DefaultDir is the default run folder.
const DefaultDir = "/run/xdpgen-cluster"

// Packages are the Debian packages the cluster needs.
var Packages = []string{"containerd", "runc", "iptables", "containernetworking-plugins", "ethtool"}

// Components in start order; Down stops them in reverse, the kubelets' pods first. Containerd, LoopbackProxy and
// Kubelet run once per node (LoopbackProxy on the nodes after the first only).
const (
	Containerd        = "containerd"
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	LoopbackProxy     = "apiserver-proxy"
	Kubelet           = "kubelet"
)

func (o *Options) defaults() {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.APIServerPort == 0 {
		o.APIServerPort = 6443
	}
	if o.PodCIDR == "" {
		o.PodCIDR = "10.244.0.0/24"
	}
	if o.Bridge == "" {
		o.Bridge = "xdpgen-cni0"
	}
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	if o.NodeName == "" {
		h, _ := os.Hostname()
		o.NodeName = strings.ToLower(h)
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	o.Dir, _ = filepath.Abs(o.Dir)
	o.BinDir, _ = filepath.Abs(o.BinDir)
}

// state is what the run folder remembers for Down and for later commands.
type state struct {
	Options Options             `json:"options"`
	Host    *hostState          `json:"host"`
	Procs   map[string]*process `json:"procs"`
	Nodes   []Node              `json:"nodes"`
}

// Cluster is a running (or partly started) local cluster.
type Cluster struct {
	opts  Options
	paths paths
	st    *state
	log   io.Writer
}

// Kubeconfig is the path of the admin kubeconfig (system:masters).
func (c *Cluster) Kubeconfig() string { return c.paths.kubeconfig() }

// Dir is the run folder.
func (c *Cluster) Dir() string { return c.opts.Dir }

// NodeName is the first node's name: the host's.
func (c *Cluster) NodeName() string { return c.opts.NodeName }

// APIServerPort is the API server's port on 127.0.0.1.
func (c *Cluster) APIServerPort() int { return c.opts.APIServerPort }

// SaveLogs copies the components' logs to dir (the run folder goes at teardown).
func (c *Cluster) SaveLogs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logs, err := filepath.Glob(filepath.Join(c.paths.logs(), "*.log"))
	if err != nil {
		return err
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(l)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// LogFile is the log of a component.
func (c *Cluster) LogFile(component string) string {
	return filepath.Join(c.paths.logs(), component+".log")
}

// RESTConfig is an admin client configuration.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
}

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.log, "cluster: "+format+"\n", args...)
}

func (c *Cluster) save() error {
	b, err := json.MarshalIndent(c.st, "", "  ")
	if err != nil {
		return err
	}
	tmp := c.paths.state() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.paths.state())
}

// Open returns the cluster whose run folder is dir.
func Open(dir string, log io.Writer) (*Cluster, error) {
	if dir == "" {
		dir = DefaultDir
	}
	if log == nil {
		log = os.Stderr
	}
	p := paths{dir}
	b, err := os.ReadFile(p.state())
	if err != nil {
		return nil, err
	}
	st := &state{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("read %s: %w", p.state(), err)
	}
	st.Options.Log = log
	if len(st.Nodes) == 0 { // recorded by a harness that knew only one node
		st.Nodes = []Node{{Name: st.Options.NodeName, PodCIDR: st.Options.PodCIDR}}
	}
	return &Cluster{opts: st.Options, paths: p, st: st, log: log}, nil
}

// Up starts a cluster and waits until its node is Ready and pods can be created. A leftover cluster in the same
// run folder is torn down first. When Up fails (or ctx ends), it tears down what it started before returning.
func Up(ctx context.Context, opts Options) (_ *Cluster, err error) {
	opts.defaults()
	nodeList, err := nodes(opts)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the local cluster needs root (containers, cgroups, iptables, network namespaces)")
	}
	for _, b := range []string{Etcd, APIServer, ControllerManager, Scheduler, Kubelet} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, b)); err != nil {
			return nil, fmt.Errorf("%s is missing from %s: build it with `make k8s-bins`", b, opts.BinDir)
		}
	}
	if _, err := os.Stat(paths{opts.Dir}.state()); err == nil {
		fmt.Fprintf(opts.Log, "cluster: a cluster was left in %s: tearing it down first\n", opts.Dir)
		if err := Down(opts.Dir, opts.Log); err != nil {
			return nil, fmt.Errorf("tear down the previous cluster: %w", err)
		}
	}
	if err := portsFree(opts.APIServerPort, etcdClientPort, etcdPeerPort, kcmPort, schedulerPort, kubeletPort, kubeletHealthPort); err != nil {
		return nil, err
	}
	if opts.InstallPackages {
		if err := installPackages(opts.Log); err != nil {
			return nil, err
		}
	}
	for _, bin := range []string{"containerd", "ctr", "runc", "iptables", "nsenter", "unshare", "ethtool", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not found: install the Debian packages %s", bin, strings.Join(Packages, " "))
		}
	}

	start := time.Now()
	host, err := recordHost()
	if err != nil {
		return nil, fmt.Errorf("record the host's state: %w", err)
	}
	c := &Cluster{opts: opts, paths: paths{opts.Dir}, log: opts.Log,
		st: &state{Options: opts, Host: host, Procs: map[string]*process{}, Nodes: nodeList}}
	if err := os.MkdirAll(c.paths.logs(), 0o755); err != nil {
		return nil, err
	}
	if err := c.save(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.logf("start failed (%v): tearing down", err)
			if derr := Down(opts.Dir, opts.Log); derr != nil {
				err = errors.Join(err, fmt.Errorf("teardown: %w", derr))
			}
		}
	}()

	if err := c.writeConfigs(); err != nil {
		return nil, err
	}
	// Before the second node's mount namespace is made, which copies it.
	host.MountedBPFFS, err = mountBPFFS()
	if serr := c.save(); err == nil {
		err = serr
	}
	if err != nil {
		return nil, err
	}
	lap := time.Now()
	for _, n := range c.st.Nodes {
		if n.Netns != "" {
			if err := c.setUpNodeHost(n); err != nil {
				return nil, fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		if err := c.startComponent(ctx, nodeComponent(n, Containerd)); err != nil {
			return nil, err
		}
		for _, img := range opts.Images {
			if err := c.importImage(ctx, n, img); err != nil {
				return nil, err
			}
		}
	}
	tContainerd := time.Since(lap)
	lap = time.Now()
	for _, comp := range []string{Etcd, APIServer, ControllerManager, Scheduler} {
		if err := c.startComponent(ctx, comp); err != nil {
			return nil, err
		}
	}
	for _, n := range c.st.Nodes {
		if n.Netns != "" {
			if err := c.startComponent(ctx, nodeComponent(n, LoopbackProxy)); err != nil {
				return nil, err
			}
		}
		if err := c.startComponent(ctx, nodeComponent(n, Kubelet)); err != nil {
			return nil, err
		}
	}
	tControlPlane := time.Since(lap)
	lap = time.Now()
	if err := c.waitNodesReady(ctx); err != nil {
		return nil, err
	}
	c.logf("up in %.1f s (containerds and images %.1f s, control plane and kubelets %.1f s, %d nodes Ready and default ServiceAccount %.1f s)",
		time.Since(start).Seconds(), tContainerd.Seconds(), tControlPlane.Seconds(), len(c.st.Nodes), time.Since(lap).Seconds())
	c.logf("kubeconfig: %s", c.Kubeconfig())
	return c, nil
}

func (c *Cluster) writeConfigs() error {
	pk, err := newPKI(c.paths.pki())
	if err != nil {
		return fmt.Errorf("create the CA: %w", err)
	}
	type cert struct {
		name, cn string
		orgs     []string
		hosts    []string
		server   bool
	}
	certs := []cert{
		{"apiserver", "kube-apiserver", nil, []string{"127.0.0.1", "localhost", serviceIP, "kubernetes",
			"kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}, true},
		{"admin", "xdpgen-admin", []string{"system:masters"}, nil, false},
		{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, false},
		{"kube-controller-manager", "system:kube-controller-manager", nil, nil, false},
		{"kube-scheduler", "system:kube-scheduler", nil, nil, false},
	}
	for _, n := range c.st.Nodes {
		hosts := []string{n.Name, "localhost", "127.0.0.1"}
		if n.IP != "" {
			hosts = append(hosts, n.IP)
		}
		certs = append(certs,
			cert{nodeCert(n, "kubelet"), "system:node:" + n.Name, []string{"system:nodes"}, nil, false},
			cert{nodeCert(n, "kubelet-serving"), "system:node:" + n.Name, []string{"system:nodes"}, hosts, true})
	}
	for _, ct := range certs {
		if err := pk.issue(ct.name, ct.cn, ct.orgs, ct.hosts, ct.server); err != nil {
			return err
		}
	}
	if err := pk.serviceAccountKeys(); err != nil {
		return err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", c.opts.APIServerPort)
	kubeconfigs := map[string]string{
		c.paths.kubeconfig(): "admin",
		c.paths.join("kube-controller-manager.kubeconfig"): "kube-controller-manager",
		c.paths.join("kube-scheduler.kubeconfig"):          "kube-scheduler",
	}
	for _, n := range c.st.Nodes {
		kubeconfigs[c.paths.join(nodeCert(n, "kubelet")+".kubeconfig")] = nodeCert(n, "kubelet")
	}
	for file, user := range kubeconfigs {
		if err := pk.kubeconfig(file, server, user); err != nil {
			return err
		}
	}
	for _, n := range c.st.Nodes {
		p := c.nodePaths(n)
		if err := writeContainerdConfig(p); err != nil {
			return err
		}
		if err := writeCNIConfig(p, c.opts.Bridge, n.PodCIDR); err != nil {
			return err
		}
		if err := c.writeKubeletConfig(n); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) args(component string) []string {
	for _, n := range c.st.Nodes {
		switch component {
		case nodeComponent(n, Containerd):
			return c.containerdArgs(n)
		case nodeComponent(n, Kubelet):
			return c.kubeletArgs(n)
		}
		if n.Netns != "" && component == nodeComponent(n, LoopbackProxy) {
			return c.loopbackProxyArgs(n)
		}
	}
	switch component {
	case Etcd:
		return c.etcdArgs()
	case APIServer:
		return c.apiserverArgs()
	case ControllerManager:
		return c.controllerManagerArgs()
	case Scheduler:
		return c.schedulerArgs()
	}
	return nil
}

// startComponent starts one component and waits until it serves.
func (c *Cluster) startComponent(ctx context.Context, component string) error {
	args := c.args(component)
	if args == nil {
		return fmt.Errorf("unknown component %q", component)
	}
	p, err := startProcess(component, args, c.LogFile(component))
	if err != nil {
		return err
	}
	c.st.Procs[component] = p
	if err := c.save(); err != nil {
		return err
	}
	check := c.readyCheck(component)
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if !p.alive() {
			return fmt.Errorf("%s exited: %s", component, c.logTail(component))
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", component, ctx.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 90 s (%v): %s", component, err, c.logTail(component))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops one component (for tests of outages): SIGTERM, and SIGKILL if it is still there after grace.
// Start starts it again with the same arguments. A component of the first node goes by its own name (kubelet),
// one of another node by NodeComponent's name for it.
func (c *Cluster) Stop(component string, grace time.Duration) error {
	p := c.st.Procs[component]
	if p == nil {
		return fmt.Errorf("%s was not started", component)
	}
	c.logf("stopping %s (pid %d)", component, p.PID)
	return p.stop(grace)
}

// Start starts a stopped component again and waits until it serves.
func (c *Cluster) Start(ctx context.Context, component string) error {
	if p := c.st.Procs[component]; p.alive() {
		return fmt.Errorf("%s still runs (pid %d)", component, p.PID)
	}
	c.logf("starting %s", component)
	return c.startComponent(ctx, component)
}

// NodeComponent is the name Stop, Start and LogFile know a node's component by (kubelet, node2-kubelet).
func (c *Cluster) NodeComponent(node, component string) (string, error) {
	n, err := c.node(node)
	if err != nil {
		return "", err
	}
	return nodeComponent(n, component), nil
}

func (c *Cluster) readyCheck(component string) func(context.Context) error {
	for _, n := range c.st.Nodes {
		switch component {
		case nodeComponent(n, Containerd):
			return func(ctx context.Context) error { _, err := c.ctr(ctx, n, "version"); return err }
		case nodeComponent(n, LoopbackProxy):
			return func(context.Context) error { return loopbackListening(n, c.opts.APIServerPort) }
		}
	}
	switch component {
	case Etcd:
		return func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/health", etcdClientPort))
		}
	case APIServer:
		return func(ctx context.Context) error {
			cs, err := c.clientset()
			if err != nil {
				return err
			}
			_, err = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err
		}
	}
	// The controller manager's, the scheduler's and the kubelets' health endpoints answer before they have done
	// anything useful; waitNodesReady checks the outcome.
	return func(context.Context) error { return nil }
}

// portsFree fails when another process (another local cluster, most likely) listens on one of the ports.
func portsFree(ports ...int) error {
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("port %d on 127.0.0.1 is taken (%v): is another local cluster running? `make cluster-down` stops "+
				"the one of `make cluster-up`; an end-to-end test run stops its own", p, err)
		}
		l.Close()
	}
	return nil
}

func httpOK(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func (c *Cluster) clientset() (*kubernetes.Clientset, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// waitNodesReady waits for every node to be Ready (the CNI configuration is in place) and for the default
// ServiceAccount, without which pods are refused.
func (c *Cluster) waitNodesReady(ctx context.Context) error {
	cs, err := c.clientset()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(120 * time.Second)
	last := ""
	for {
		last = c.nodeNotReadyReason(ctx, cs)
		if last == "" {
			return nil
		}
		comps := []string{ControllerManager, Scheduler}
		for _, n := range c.st.Nodes {
			comps = append(comps, nodeComponent(n, Kubelet))
		}
		for _, comp := range comps {
			if !c.st.Procs[comp].alive() {
				return fmt.Errorf("%s exited: %s", comp, c.logTail(comp))
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 120 s: %s", last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (c *Cluster) nodeNotReadyReason(ctx context.Context, cs *kubernetes.Clientset) string {
	for _, n := range c.st.Nodes {
		node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Sprintf("node %s: %v", n.Name, err)
		}
		ready := false
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				ready = cond.Status == corev1.ConditionTrue
				if !ready {
					return fmt.Sprintf("node %s Ready=%s: %s; kubelet log: %s", n.Name, cond.Status, cond.Message,
						c.logTail(nodeComponent(n, Kubelet)))
				}
			}
		}
		if !ready {
			return fmt.Sprintf("node %s has no Ready condition yet", n.Name)
		}
	}
	if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		return fmt.Sprintf("default ServiceAccount: %v", err)
	}
	return ""
}

// ImportImage imports an image tarball into every node's containerd, as Up does with Options.Images: for an image
// built once the cluster is up (the release's, which the install test builds).
func (c *Cluster) ImportImage(ctx context.Context, tarball string) error {
	for _, n := range c.st.Nodes {
		if err := c.importImage(ctx, n, tarball); err != nil {
			return err
		}
	}
	return nil
}

// importImage loads an image tarball into the namespace a node's CRI uses, unpacked for its snapshotter.
func (c *Cluster) importImage(ctx context.Context, n Node, tarball string) error {
	t := time.Now()
	out, err := c.ctr(ctx, n, "-n", "k8s.io", "images", "import", "--snapshotter", "overlayfs", tarball)
	if err != nil {
		return fmt.Errorf("import %s on %s: %w", tarball, n.Name, err)
	}
	c.logf("imported %s on %s in %.1f s: %s", tarball, n.Name, time.Since(t).Seconds(), strings.Join(strings.Fields(out), " "))
	return nil
}

// ctr runs ctr against a node's containerd. Its socket is a file in the run folder: the host reaches it whatever
// the node's namespaces.
func (c *Cluster) ctr(ctx context.Context, n Node, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.nodePaths(n).containerdSocket()}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// logTail is the end of a component's log, for error messages.
func (c *Cluster) logTail(component string) string {
	b, err := os.ReadFile(c.LogFile(component))
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n    " + strings.Join(lines, "\n    ") + "\n    (full log: " + c.LogFile(component) + ")"
}

// Down tears down the cluster whose run folder is dir and puts the host back as it was: pods first (the kubelet
// stops them and releases their networks), then the processes the harness started, newest first, then what they
// left on the host. It continues past errors and reports them all. A missing run folder means nothing to do.
func Down(dir string, log io.Writer) error {
	if dir == "" {
		dir = DefaultDir
	}
	c, err := Open(dir, log)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); serr == nil {
			// Started but crashed before recording anything: only the folder itself is ours.
			if err := unmountUnder(dir); err != nil {
				return err
			}
			return os.RemoveAll(dir)
		}
		fmt.Fprintf(log, "cluster: nothing to tear down in %s\n", dir)
		return nil
	}
	if err != nil {
		return err
	}
	return c.down()
}

func (c *Cluster) down() error {
	start := time.Now()
	var errs []error
	step := func(what string, fn func() error) {
		t := time.Now()
		if err := fn(); err != nil {
			c.logf("%s: %v", what, err)
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			return
		}
		if d := time.Since(t); d > 500*time.Millisecond {
			c.logf("%s (%.1f s)", what, d.Seconds())
		}
	}
	stop := func(component string, grace time.Duration) func() error {
		return func() error {
			p := c.st.Procs[component]
			if p == nil {
				return nil
			}
			return p.stop(grace)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c.logf("tearing down %s", c.opts.Dir)
	// Nothing may recreate pods while they go: the DaemonSet and ReplicaSet controllers stop first.
	step("stop kube-controller-manager", stop(ControllerManager, 10*time.Second))
	step("stop kube-scheduler", stop(Scheduler, 10*time.Second))
	step("delete every pod and wait for the kubelets to stop them", func() error { return c.drainPods(ctx) })
	for _, n := range c.st.Nodes {
		step("stop "+nodeComponent(n, Kubelet), stop(nodeComponent(n, Kubelet), 20*time.Second))
	}
	for _, n := range c.st.Nodes {
		step("kill containers left running on "+n.Name, func() error { return c.killContainers(ctx, n) })
	}
	step("stop kube-apiserver", stop(APIServer, 20*time.Second))
	step("stop etcd", stop(Etcd, 10*time.Second))
	var shims []int
	for _, n := range c.st.Nodes {
		shims = append(shims, c.shimPIDs(n)...)
		step("stop "+nodeComponent(n, Containerd), stop(nodeComponent(n, Containerd), 20*time.Second))
		if n.Netns != "" {
			step("stop "+nodeComponent(n, LoopbackProxy), stop(nodeComponent(n, LoopbackProxy), 5*time.Second))
		}
	}
	step("stop container shims left running", func() error {
		for _, pid := range shims {
			killPID(pid)
		}
		return nil
	})
	h := c.st.Host
	if h == nil {
		h = &hostState{}
	}
	step("remove cgroups", h.removeCgroups)
	step("unmount", func() error { return unmountUnder(c.opts.Dir, "/var/lib/kubelet", "/run/containerd") })
	step("unmount the bpffs", h.unmountBPFFS)
	for _, n := range c.st.Nodes {
		if n.Netns != "" {
			step("remove the network namespace and veth of "+n.Name, func() error { return removeNodeHost(n) })
		}
	}
	step("remove network namespaces", h.removeNetns)
	step("remove the CNI bridge", func() error { return removeLink(c.opts.Bridge) })
	step("remove iptables chains", h.removeIptablesChains)
	step("restore sysctls", h.restoreSysctls)
	step("remove folders", h.removeDirs)
	step("remove the run folder", func() error {
		ms, _ := mountPoints()
		for _, m := range ms {
			if underAny(m, []string{c.opts.Dir}) {
				return fmt.Errorf("%s is still mounted: not removing %s", m, c.opts.Dir)
			}
		}
		return os.RemoveAll(c.opts.Dir)
	})
	if len(h.Fingerprint) > 0 {
		if d := DiffFingerprints(h.Fingerprint, Fingerprint()); len(d) > 0 {
			c.logf("the host differs from before the cluster started (a concurrent change, or something left over):\n    %s",
				strings.Join(d, "\n    "))
		} else {
			c.logf("host restored: links, iptables rules, mounts, sysctls, cgroups, network namespaces and folders as before")
		}
	}
	c.logf("down in %.1f s", time.Since(start).Seconds())
	return errors.Join(errs...)
}

// drainPods deletes every pod and waits until the kubelets have stopped them: the pod objects go away only once
// their containers are stopped and their sandboxes' networks torn down. Pods of a node whose kubelet is stopped,
// or cannot reach the API server (its loopback proxy died with a killed harness), are deleted at once
// (killContainers stops them the hard way).
func (c *Cluster) drainPods(ctx context.Context) error {
	if !c.st.Procs[APIServer].alive() {
		return nil // nothing can drain them: killContainers does it the hard way
	}
	cs, err := c.clientset()
	if err != nil {
		return err
	}
	var live []Node
	for _, n := range c.st.Nodes {
		reachesAPIServer := n.Netns == "" || c.st.Procs[nodeComponent(n, LoopbackProxy)].alive()
		if c.st.Procs[nodeComponent(n, Kubelet)].alive() && reachesAPIServer {
			live = append(live, n)
		}
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		grace := int64(5)
		if !slices.ContainsFunc(live, func(n Node) bool { return n.Name == p.Spec.NodeName }) {
			grace = 0
		}
		err := cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d pods still terminating after 45 s", len(pods.Items))
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The pod objects are gone; wait for the sandboxes' tasks too.
	for _, n := range live {
		for time.Now().Before(deadline) {
			out, err := c.ctr(ctx, n, "-n", "k8s.io", "tasks", "ls", "-q")
			if err != nil || strings.TrimSpace(out) == "" {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	return nil
}

// killContainers kills and deletes every container task a node's containerd still has (after a kubelet that
// could not drain, or died).
func (c *Cluster) killContainers(ctx context.Context, n Node) error {
	if !c.st.Procs[nodeComponent(n, Containerd)].alive() {
		return nil
	}
	out, err := c.ctr(ctx, n, "-n", "k8s.io", "tasks", "ls", "-q")
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range strings.Fields(out) {
		_, _ = c.ctr(ctx, n, "-n", "k8s.io", "tasks", "kill", "-a", "-s", "SIGKILL", id)
		// The CRI plugin deletes a task as soon as it exits: "not found" means it is gone already.
		if out, err := c.ctr(ctx, n, "-n", "k8s.io", "tasks", "rm", "-f", id); err != nil && !strings.Contains(out, "not found") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// shimPIDs are the container shims a node's containerd started, from their pid files in its state folder.
func (c *Cluster) shimPIDs(n Node) []int {
	files, _ := filepath.Glob(filepath.Join(c.nodePaths(n).containerdState(), "io.containerd.runtime.v2.task", "*", "*", "shim.pid"))
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			pids = append(pids, pid)
		}
	}
	return pids
}

func installPackages(log io.Writer) error {
	var missing []string
	for _, p := range Packages {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
		if err != nil || !strings.Contains(string(out), "install ok installed") {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	fmt.Fprintf(log, "cluster: installing Debian packages %s\n", strings.Join(missing, " "))
	run := func(args ...string) error {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("update", "-qq"); err != nil {
		return err
	}
	return run(append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)...)
}
