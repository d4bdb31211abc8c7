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

// writeKubeletConfig: cgroup v1 allowed (1.35+ refuse it by default), cgroupfs, our containerd, everything on
// 127.0.0.1, x509 client authentication with our CA. Image garbage collection off: the imported images cannot be
// pulled again. Eviction only on real memory pressure: the run folder shares the host's disk.
func writeKubeletConfig(p paths) error {
	pk := paths{p.pki()}
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%[1]s
address: 127.0.0.1
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
`, p.containerdSocket(), kubeletPort, kubeletHealthPort, pk.join("kubelet-serving.crt"),
		pk.join("kubelet-serving.key"), pk.join("ca.crt"), p.join("pod-logs"))
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
		// The node's name resolves to 127.0.0.1, where the kubelet listens: `kubectl logs` works over loopback.
		"--kubelet-preferred-address-types=Hostname,InternalIP",
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

func (c *Cluster) kubeletArgs() []string {
	return []string{
		filepath.Join(c.opts.BinDir, "kubelet"),
		"--config=" + c.paths.kubeletConfig(),
		"--kubeconfig=" + c.paths.join("kubelet.kubeconfig"),
		"--hostname-override=" + c.opts.NodeName,
		"--root-dir=" + c.paths.kubeletDir(),
		"--cert-dir=" + c.paths.join("kubelet", "pki"),
		"--v=1",
	}
}

func (c *Cluster) containerdArgs() []string {
	return []string{"containerd", "--config", c.paths.containerdConfig(), "--log-level", "warn"}
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}
