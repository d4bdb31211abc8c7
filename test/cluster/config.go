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

package cluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// Addresses: everything listens on 127.0.0.1. etcd is off its default ports so that it never meets another etcd.
const (
	etcdClientPort    = 12379
	etcdPeerPort      = 12380
	kcmPort           = 10257
	schedulerPort     = 10259
	kubeletPort       = 10250
	kubeletHealthPort = 10248
	serviceCIDR       = "10.96.0.0/24"
	serviceIP         = "10.96.0.1" // the kubernetes Service: the first address of serviceCIDR
	// PauseImage is the sandbox image containerd 1.6 asks for; the harness imports a local build under this name.
	PauseImage = "registry.k8s.io/pause:3.6"

	// The second node's link to the host: a veth on a /24 of its own, the host's side .1, the node's .2. The first
	// node's kubelet serves on the host's side, so that the API server reaches both kubelets by InternalIP.
	nodeLinkHostIP = "10.251.0.1"
	nodeLinkNodeIP = "10.251.0.2"
	nodeLinkPrefix = 24
	// secondNodeName is the second node's name: it is no host name, so nothing may ever look it up (see
	// apiserverArgs).
	secondNodeName = "node2"
)

// paths are the files of one cluster, all under its run folder.
type paths struct{ dir string }

func (p paths) join(elem ...string) string { return filepath.Join(append([]string{p.dir}, elem...)...) }
func (p paths) state() string              { return p.join("state.json") }
func (p paths) logs() string               { return p.join("logs") }
func (p paths) pki() string                { return p.join("pki") }
func (p paths) kubeconfig() string         { return p.join("kubeconfig") }
func (p paths) containerdRoot() string     { return p.join("containerd", "root") }
func (p paths) containerdState() string    { return p.join("containerd", "state") }
func (p paths) containerdSocket() string   { return p.join("containerd", "containerd.sock") }
func (p paths) containerdConfig() string   { return p.join("containerd", "config.toml") }
func (p paths) cniConfDir() string         { return p.join("cni", "net.d") }
func (p paths) kubeletDir() string         { return p.join("kubelet") }
func (p paths) kubeletConfig() string      { return p.join("kubelet-config.yaml") }
func (p paths) etcdData() string           { return p.join("etcd") }
func (p paths) devicePlugins() string      { return p.join("device-plugins") }

// writeContainerdConfig: containerd with its root, state and sockets in the run folder. restrict_oom_score_adj
// because this VM lacks CAP_SYS_RESOURCE (without it every sandbox fails: "can't get final child's PID from
// pipe: EOF"); cgroupfs, as the kubelet; the CNI configuration in the run folder, the plugins from Debian's
// containernetworking-plugins.
func writeContainerdConfig(p paths) error {
	cfg := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[8]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
`, p.containerdRoot(), p.containerdState(), p.containerdSocket(), p.containerdSocket()+".ttrpc",
		p.join("containerd", "opt"), PauseImage, p.cniConfDir(), p.join("containerd", "runc"))
	return writeFile(p.containerdConfig(), cfg)
}

// writeCNIConfig: a bridge on a private /24 with host-local addresses (state in the run folder). No masquerade
// and no port mapping, so the plugins add no iptables rules.
func writeCNIConfig(p paths, bridge, podCIDR string) error {
	cfg := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "xdpgen-local",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    }
  ]
}
`, bridge, podCIDR, p.join("cni", "ipam"))
	return writeFile(filepath.Join(p.cniConfDir(), "10-xdpgen-local.conflist"), cfg)
}

// writeKubeletConfig: cgroup v1 allowed (1.35+ refuse it by default), cgroupfs, the node's containerd, serving
// on the node's IP (127.0.0.1 on a single-node cluster), x509 client authentication with our CA. Image garbage
// collection off: the imported images cannot be pulled again. Eviction only on real memory pressure: the run folder
// shares the host's disk. A node after the first has a cgroup of its own (cgroupRoot), so that its pods are apart
// from the first node's.
func (c *Cluster) writeKubeletConfig(n Node) error {
	p, pk := c.nodePaths(n), paths{c.paths.pki()}
	address := n.IP
	if address == "" {
		address = "127.0.0.1"
	}
	cgroupRoot := ""
	if n.Netns != "" {
		cgroupRoot = "cgroupRoot: /" + n.Name + "\n"
	}
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
%[8]scontainerRuntimeEndpoint: unix://%[1]s
address: %[9]s
port: %[2]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[3]d
tlsCertFile: %[4]q
tlsPrivateKeyFile: %[5]q
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %[6]q
authorization:
  mode: AlwaysAllow
clusterDomain: cluster.local
podLogsDir: %[7]q
rotateCertificates: false
serverTLSBootstrap: false
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
  nodefs.inodesFree: "1%%"
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 5s
`, p.containerdSocket(), kubeletPort, kubeletHealthPort, pk.join(nodeCert(n, "kubelet-serving")+".crt"),
		pk.join(nodeCert(n, "kubelet-serving")+".key"), pk.join("ca.crt"), p.join("pod-logs"), cgroupRoot, address)
	return writeFile(p.kubeletConfig(), cfg)
}

func (c *Cluster) etcdArgs() []string {
	return []string{
		filepath.Join(c.opts.BinDir, "etcd"),
		"--name=local",
		"--data-dir=" + c.paths.etcdData(),
		"--listen-client-urls=http://127.0.0.1:" + strconv.Itoa(etcdClientPort),
		"--advertise-client-urls=http://127.0.0.1:" + strconv.Itoa(etcdClientPort),
		"--listen-peer-urls=http://127.0.0.1:" + strconv.Itoa(etcdPeerPort),
		"--initial-advertise-peer-urls=http://127.0.0.1:" + strconv.Itoa(etcdPeerPort),
		"--initial-cluster=local=http://127.0.0.1:" + strconv.Itoa(etcdPeerPort),
		"--listen-metrics-urls=",
		"--log-level=warn",
		// A single-member cluster on a scratch folder: no fsync waits for durability nobody needs.
		"--unsafe-no-fsync",
	}
}

func (c *Cluster) apiserverArgs() []string {
	pk := paths{c.paths.pki()}
	return []string{
		filepath.Join(c.opts.BinDir, "kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdClientPort),
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.opts.APIServerPort),
		// The endpoint reconciler refuses a loopback address; nothing here reads the kubernetes Endpoints.
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--cert-dir=" + c.paths.join("apiserver"),
		"--tls-cert-file=" + pk.join("apiserver.crt"),
		"--tls-private-key-file=" + pk.join("apiserver.key"),
		"--client-ca-file=" + pk.join("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pk.join("sa.pub"),
		"--service-account-signing-key-file=" + pk.join("sa.key"),
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--kubelet-client-certificate=" + pk.join("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + pk.join("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority=" + pk.join("ca.crt"),
		"--kubelet-preferred-address-types=" + c.kubeletAddressTypes(),
		"--profiling=false",
		"--v=1",
	}
}

func (c *Cluster) controllerManagerArgs() []string {
	pk := paths{c.paths.pki()}
	kc := c.paths.join("kube-controller-manager.kubeconfig")
	return []string{
		filepath.Join(c.opts.BinDir, "kube-controller-manager"),
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(kcmPort),
		"--cert-dir=" + c.paths.join("kube-controller-manager"),
		// Each controller with its own service account: without it the DaemonSet controller may not create
		// ControllerRevisions and no agent pod ever appears.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + pk.join("sa.key"),
		"--root-ca-file=" + pk.join("ca.crt"),
		"--cluster-signing-cert-file=" + pk.join("ca.crt"),
		"--cluster-signing-key-file=" + pk.join("ca.key"),
		"--leader-elect=false",
		"--profiling=false",
		"--v=1",
	}
}

func (c *Cluster) schedulerArgs() []string {
	kc := c.paths.join("kube-scheduler.kubeconfig")
	return []string{
		filepath.Join(c.opts.BinDir, "kube-scheduler"),
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(schedulerPort),
		"--leader-elect=false",
		"--profiling=false",
		"--v=1",
	}
}

// kubeletAddressTypes: on a single node, the node's name resolves to 127.0.0.1, where the kubelet listens, and
// `kubectl logs` works over loopback. With a second node, InternalIP only: the API server would look the name
// node2 up in DNS, a query that leaves the machine; each kubelet serves on its node's IP instead.
func (c *Cluster) kubeletAddressTypes() string {
	if c.opts.Nodes > 1 {
		return "InternalIP"
	}
	return "Hostname,InternalIP"
}

// kubeletArgs: a node after the first runs in the namespaces of its containerd (network, and the private mount
// namespace with its own device-plugins folder), entered by the containerd's PID.
func (c *Cluster) kubeletArgs(n Node) []string {
	p := c.nodePaths(n)
	args := []string{
		filepath.Join(c.opts.BinDir, "kubelet"),
		"--config=" + p.kubeletConfig(),
		"--kubeconfig=" + c.paths.join(nodeCert(n, "kubelet")+".kubeconfig"),
		"--hostname-override=" + n.Name,
		"--root-dir=" + p.kubeletDir(),
		"--cert-dir=" + p.join("kubelet", "pki"),
		"--v=1",
	}
	if n.IP != "" {
		args = append(args, "--node-ip="+n.IP)
	}
	if n.Netns == "" {
		return args
	}
	pid := 0
	if p := c.st.Procs[nodeComponent(n, Containerd)]; p != nil {
		pid = p.PID
	}
	return append([]string{"nsenter", "--target", strconv.Itoa(pid), "--mount", "--net", "--"}, args...)
}

// containerdArgs: a node after the first gets its network namespace, and a private mount namespace (slave: the
// host's mounts still reach it, its own stay in it) in which the kubelet's fixed device-plugins folder is the
// node's own. Without it the second kubelet deletes the first one's registration socket.
func (c *Cluster) containerdArgs(n Node) []string {
	p := c.nodePaths(n)
	args := []string{"containerd", "--config", p.containerdConfig(), "--log-level", "warn"}
	if n.Netns == "" {
		return args
	}
	return append([]string{"nsenter", "--net=" + n.Netns, "--", "unshare", "--mount", "--propagation", "slave", "--",
		"sh", "-c", `mount --bind "$1" ` + devicePluginsDir + ` && shift && exec "$@"`, "sh", p.devicePlugins()}, args...)
}

// loopbackProxyArgs: the harness's own executable, in its loopback-proxy mode (proxy.go).
func (c *Cluster) loopbackProxyArgs(n Node) []string {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	api := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.opts.APIServerPort))
	return []string{exe, loopbackProxyArg, n.Netns, api, api}
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}
