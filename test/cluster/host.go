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
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// What the cluster changes on the host outside its run folder, measured on this machine
// (../shared/k8s-local-cluster.md and `xdpgen-cluster down`'s own check): the harness records each before it
// starts anything and puts it back on teardown.
var (
	// restoredSysctls: the kubelet sets the vm and kernel ones (it "protects kernel defaults" only when asked to
	// refuse to start instead); the bridge plugin turns on forwarding for its gateway.
	restoredSysctls = []string{
		"vm.overcommit_memory",
		"vm.panic_on_oom",
		"kernel.panic",
		"kernel.panic_on_oops",
		"kernel.keys.root_maxkeys",
		"kernel.keys.root_maxbytes",
		"net.ipv4.ip_forward", // turning it on also turns off net.ipv4.conf.all.accept_redirects
		"net.ipv4.conf.all.accept_redirects",
		"net.ipv4.conf.all.forwarding",
		"net.ipv4.conf.default.forwarding",
		"net.ipv6.conf.all.forwarding",
		"net.ipv6.conf.default.forwarding",
		"net.ipv4.conf.all.route_localnet",
		"net.bridge.bridge-nf-call-iptables",
		"net.bridge.bridge-nf-call-ip6tables",
		"net.bridge.bridge-nf-call-arptables",
	}
	// createdDirs: paths the kubelet, containerd and the CNI plugins create whatever their configuration says
	// (device-plugin socket folder, container log links, shim sockets, the CNI result cache). Removed on teardown
	// when they did not exist before, and only when nothing is mounted under them.
	createdDirs = []string{
		"/var/lib/kubelet",
		"/var/log/pods",
		"/var/log/containers",
		"/run/containerd",
		"/var/lib/containerd",
		"/opt/containerd",
		"/var/lib/cni",
		"/etc/cni",
		"/opt/cni",
		"/etc/kubernetes",
	}
	iptablesTables = []string{"filter", "nat", "mangle", "raw", "security"}
	// bpffsDir is where the agents pin their runs' counters (their DaemonSet mounts it from the host): the
	// harness mounts a bpffs there when the host has none.
	bpffsDir     = "/sys/fs/bpf"
	iptablesCmds = []string{"iptables", "ip6tables"}
)

// hostState is what the harness records about the host before the cluster starts.
type hostState struct {
	Sysctls map[string]string `json:"sysctls"`
	// Chains are the iptables chains per "command/table" (such as "iptables/filter").
	Chains map[string][]string `json:"chains"`
	// Dirs are the createdDirs that existed.
	Dirs map[string]bool `json:"dirs"`
	// Cgroups are the top-level cgroups of each cgroup hierarchy, by mount point.
	Cgroups map[string][]string `json:"cgroups"`
	// Netns are the names in /run/netns; NetnsDir says whether that folder existed.
	Netns    []string `json:"netns"`
	NetnsDir bool     `json:"netnsDir"`
	// Links are the network interfaces of the root namespace.
	Links []string `json:"links"`
	// MountedBPFFS says that the harness mounted the bpffs on bpffsDir (the host had none), to unmount on teardown.
	MountedBPFFS bool `json:"mountedBPFFS"`
	// Fingerprint is everything above and more (every rule, every mount), to diff against after teardown.
	Fingerprint []string `json:"fingerprint"`
}

func recordHost() (*hostState, error) {
	h := &hostState{Sysctls: map[string]string{}, Chains: map[string][]string{}, Dirs: map[string]bool{},
		Cgroups: map[string][]string{}}
	for _, k := range restoredSysctls {
		if v, err := readSysctl(k); err == nil {
			h.Sysctls[k] = v
		}
	}
	for _, cmd := range iptablesCmds {
		for _, t := range iptablesTables {
			chains, _, err := iptablesChains(cmd, t)
			if err != nil {
				continue // table not in this kernel
			}
			h.Chains[cmd+"/"+t] = chains
		}
	}
	for _, d := range createdDirs {
		if _, err := os.Lstat(d); err == nil {
			h.Dirs[d] = true
		}
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		h.Cgroups[m] = subdirs(m)
	}
	h.Netns = netnsNames()
	_, err = os.Stat("/run/netns")
	h.NetnsDir = err == nil
	links, err := linkNames()
	if err != nil {
		return nil, err
	}
	h.Links = links
	h.Fingerprint = Fingerprint()
	return h, nil
}

// Fingerprint lists what the cluster may change on the host, one line per fact: network interfaces (the second
// node's veth among them), iptables rules of every table, mount points (the second node's network namespace and
// the bpffs among them) with their file system, the pins on the bpffs, the sysctls it changes, top-level cgroups (the second node's among them), the folders in
// createdDirs, and the CRI's network namespaces.
// Two fingerprints taken before and after a cluster's life should be equal.
func Fingerprint() []string {
	var out []string
	if links, err := linkNames(); err == nil {
		for _, l := range links {
			out = append(out, "link "+l)
		}
	}
	for _, cmd := range iptablesCmds {
		for _, t := range iptablesTables {
			rules, err := exec.Command(cmd, "-w", "5", "-t", t, "-S").Output()
			if err != nil {
				continue
			}
			for _, r := range strings.Split(strings.TrimSpace(string(rules)), "\n") {
				out = append(out, fmt.Sprintf("%s -t %s %s", cmd, t, r))
			}
		}
	}
	if ms, err := mountPoints(); err == nil {
		for _, m := range ms {
			if ownNetns(m) {
				out = append(out, "mount "+m+" "+fsType(m))
			}
		}
	}
	if fsType(bpffsDir) == "bpf" {
		_ = filepath.WalkDir(bpffsDir, func(p string, _ os.DirEntry, err error) error {
			if err == nil && p != bpffsDir {
				out = append(out, "pin "+p)
			}
			return nil
		})
	}
	for _, k := range restoredSysctls {
		if v, err := readSysctl(k); err == nil {
			out = append(out, fmt.Sprintf("sysctl %s = %s", k, v))
		}
	}
	if cgs, err := cgroupMounts(); err == nil {
		for _, m := range cgs {
			for _, d := range subdirs(m) {
				out = append(out, "cgroup "+filepath.Join(m, d))
			}
		}
	}
	for _, d := range createdDirs {
		if _, err := os.Lstat(d); err == nil {
			out = append(out, "dir "+d)
		}
	}
	for _, n := range netnsNames() {
		if ownNetns(filepath.Join("/run/netns", n)) {
			out = append(out, "netns "+n)
		}
	}
	sort.Strings(out)
	return out
}

// ownNetns is false for named network namespaces the cluster does not make (the CRI names its own cni-*):
// tests running meanwhile make and remove theirs, and they are no concern of the cluster's teardown.
func ownNetns(path string) bool {
	name, ok := strings.CutPrefix(path, "/run/netns/")
	return !ok || strings.HasPrefix(name, "cni-")
}

// DiffFingerprints returns the lines only before has ("-") and only after has ("+").
func DiffFingerprints(before, after []string) []string {
	in := func(s []string) map[string]bool {
		m := make(map[string]bool, len(s))
		for _, l := range s {
			m[l] = true
		}
		return m
	}
	b, a := in(before), in(after)
	var d []string
	for _, l := range before {
		if !a[l] {
			d = append(d, "- "+l)
		}
	}
	for _, l := range after {
		if !b[l] {
			d = append(d, "+ "+l)
		}
	}
	return d
}

// restoreSysctls writes back every recorded sysctl that changed.
func (h *hostState) restoreSysctls() error {
	var errs []error
	for _, k := range restoredSysctls {
		want, ok := h.Sysctls[k]
		if !ok {
			continue
		}
		if got, err := readSysctl(k); err == nil && got == want {
			continue
		}
		if err := writeSysctl(k, want); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", k, want, err))
		}
	}
	return errors.Join(errs...)
}

// removeIptablesChains deletes the chains that did not exist before (the kubelet's KUBE-FIREWALL,
// KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT): first every rule that jumps to one, then the chain.
func (h *hostState) removeIptablesChains() error {
	var errs []error
	for _, cmd := range iptablesCmds {
		for _, t := range iptablesTables {
			before, ok := h.Chains[cmd+"/"+t]
			if !ok {
				continue
			}
			chains, rules, err := iptablesChains(cmd, t)
			if err != nil {
				continue
			}
			added := map[string]bool{}
			for _, c := range chains {
				if !slices.Contains(before, c) {
					added[c] = true
				}
			}
			if len(added) == 0 {
				continue
			}
			// Rules jumping to an added chain, deleted by number from the last, so earlier numbers stay valid.
			for _, c := range chains {
				if added[c] {
					continue
				}
				var nums []int
				for i, r := range rules[c] {
					if added[ruleTarget(r)] {
						nums = append(nums, i+1)
					}
				}
				for i := len(nums) - 1; i >= 0; i-- {
					if err := iptables(cmd, "-t", t, "-D", c, strconv.Itoa(nums[i])); err != nil {
						errs = append(errs, err)
					}
				}
			}
			for c := range added {
				if err := iptables(cmd, "-t", t, "-F", c); err != nil {
					errs = append(errs, err)
				}
			}
			for c := range added {
				if err := iptables(cmd, "-t", t, "-X", c); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// removeCgroups kills whatever still runs in the cgroups that did not exist before (container processes whose
// shim is gone) and removes those cgroups, deepest first.
func (h *hostState) removeCgroups() error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		for _, d := range subdirs(m) {
			if slices.Contains(h.Cgroups[m], d) {
				continue
			}
			if err := removeCgroupTree(filepath.Join(m, d)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func removeCgroupTree(root string) error {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, d := range dirs {
		for _, pid := range cgroupPIDs(d) {
			killPID(pid)
		}
	}
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		var err error
		for try := 0; try < 50; try++ { // a killed task leaves its cgroup a moment later
			if err = unix.Rmdir(dirs[i]); err == nil || errors.Is(err, unix.ENOENT) {
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}

func cgroupPIDs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// unmountUnder unmounts every mount point under any of roots, deepest and latest first.
func unmountUnder(roots ...string) error {
	ms, err := mountPoints()
	if err != nil {
		return err
	}
	var errs []error
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		if !underAny(m, roots) {
			continue
		}
		if err := unix.Unmount(m, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeNetns removes the network namespaces the CRI made (cni-*) that did not exist before.
func (h *hostState) removeNetns() error {
	var errs []error
	for _, n := range netnsNames() {
		if !strings.HasPrefix(n, "cni-") || slices.Contains(h.Netns, n) {
			continue
		}
		p := filepath.Join("/run/netns", n)
		_ = unix.Unmount(p, unix.MNT_DETACH)
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	if !h.NetnsDir {
		_ = os.Remove("/run/netns") // only if empty: other namespaces may have appeared meanwhile
	}
	return errors.Join(errs...)
}

// removeDirs removes the createdDirs that did not exist before, unless something is still mounted under them.
func (h *hostState) removeDirs() error {
	var errs []error
	ms, _ := mountPoints()
	for _, d := range createdDirs {
		if h.Dirs[d] {
			continue
		}
		if _, err := os.Lstat(d); err != nil {
			continue
		}
		if slices.ContainsFunc(ms, func(m string) bool { return underAny(m, []string{d}) }) {
			errs = append(errs, fmt.Errorf("not removing %s: something is still mounted under it", d))
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeLink deletes a network interface if it exists.
func removeLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func underAny(p string, roots []string) bool {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, strings.TrimSuffix(r, "/")+"/") {
			return true
		}
	}
	return false
}

// mountBPFFS mounts a bpffs on bpffsDir when the host has none there, and makes it shared: containerd mounts a
// hostPath into a container with HostToContainer propagation only from a shared (or slave) mount, and the second
// node's mount namespace, made after this, gets it as a slave, the same file system (its agent's pins are the
// host's). It reports whether it mounted one.
func mountBPFFS() (bool, error) {
	if fsType(bpffsDir) == "bpf" {
		mounts, err := readMountInfo()
		if err != nil {
			return false, err
		}
		return false, bpffsShared(mounts)
	}
	if err := unix.Mount("bpffs", bpffsDir, "bpf", 0, "mode=0700"); err != nil {
		return false, fmt.Errorf("mount a bpffs on %s: %w", bpffsDir, err)
	}
	if err := unix.Mount("", bpffsDir, "", unix.MS_SHARED, ""); err != nil {
		return true, fmt.Errorf("make %s a shared mount: %w", bpffsDir, err)
	}
	return true, nil
}

// bpffsShared refuses a bpffs on bpffsDir (the last mount there) that is not shared: the second node's mount
// namespace would not see it as the host's, and containerd cannot mount a hostPath from it into the agents' pods
// (they fail with CreateContainerError). bpftool mounts such a one when it pins and finds none.
func bpffsShared(mounts []mountEntry) error {
	var top *mountEntry
	for i := range mounts {
		if mounts[i].point == bpffsDir {
			top = &mounts[i]
		}
	}
	if top == nil || top.fsType != "bpf" || slices.ContainsFunc(top.optional, func(o string) bool { return strings.HasPrefix(o, "shared:") }) {
		return nil
	}
	return fmt.Errorf("the bpffs on %s is a private mount (bpftool mounts one so when it pins and finds none): the agents' "+
		"pods could not mount it; make it shared (mount --make-shared %[1]s) or unmount it (umount %[1]s, twice when %[1]s "+
		"is also bound onto itself)", bpffsDir)
}

// unmountBPFFS unmounts the bpffs that mountBPFFS mounted, and with it whatever runs left pinned there.
func (h *hostState) unmountBPFFS() error {
	if !h.MountedBPFFS || fsType(bpffsDir) != "bpf" {
		return nil
	}
	if err := unix.Unmount(bpffsDir, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", bpffsDir, err)
	}
	return nil
}

// fsType names the file system mounted on path ("bpf", "sysfs", ...), or the statfs magic number in hex.
func fsType(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "?"
	}
	switch st.Type {
	case unix.BPF_FS_MAGIC:
		return "bpf"
	case unix.SYSFS_MAGIC:
		return "sysfs"
	}
	return fmt.Sprintf("%#x", st.Type)
}

// mountPoints lists this mount namespace's mount points in /proc/self/mountinfo order (parents before children).
func mountPoints() ([]string, error) {
	return mountPointsOf(func(string) bool { return true })
}

// mountPointsOf lists, in /proc/self/mountinfo order, the mount points whose file system type keep accepts.
func mountPointsOf(keep func(fsType string) bool) ([]string, error) {
	mounts, err := readMountInfo()
	var out []string
	for _, m := range mounts {
		if keep(m.fsType) {
			out = append(out, m.point)
		}
	}
	return out, err
}

// mountEntry is a line of /proc/self/mountinfo: where, what file system, and its optional fields (shared:N,
// master:N, none for a private mount).
type mountEntry struct {
	point, fsType string
	optional      []string
}

func readMountInfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountInfo(f)
}

// parseMountInfo reads mountinfo lines (proc(5)): ID, parent ID, major:minor, root, mount point, options, optional
// fields up to "-", then the file system type, source and super options.
func parseMountInfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	s := bufio.NewScanner(r)
	for s.Scan() {
		pre, post, ok := strings.Cut(s.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 6 {
			continue
		}
		if fs := strings.Fields(post); len(fs) > 0 {
			out = append(out, mountEntry{point: unescapeMount(fields[4]), fsType: fs[0], optional: fields[6:]})
		}
	}
	return out, s.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupMounts are the mount points of cgroup (v1) and cgroup2 hierarchies.
func cgroupMounts() ([]string, error) {
	return mountPointsOf(func(fsType string) bool { return fsType == "cgroup" || fsType == "cgroup2" })
}

func subdirs(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

func netnsNames() []string {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func linkNames() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range links {
		out = append(out, l.Attrs().Name)
	}
	sort.Strings(out)
	return out, nil
}

// iptablesChains lists a table's chains and each chain's rules (the -A lines of `iptables -S`, in order).
func iptablesChains(cmd, table string) ([]string, map[string][]string, error) {
	b, err := exec.Command(cmd, "-w", "5", "-t", table, "-S").Output()
	if err != nil {
		return nil, nil, err
	}
	var chains []string
	rules := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "-P", "-N":
			chains = append(chains, f[1])
		case "-A":
			rules[f[1]] = append(rules[f[1]], l)
		}
	}
	return chains, rules, nil
}

// ruleTarget is the chain a rule jumps or goes to.
func ruleTarget(rule string) string {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" {
			return f[i+1]
		}
	}
	return ""
}

func iptables(cmd string, args ...string) error {
	out, err := exec.Command(cmd, append([]string{"-w", "5"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", cmd, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	return strings.Join(strings.Fields(string(b)), " "), err
}

func writeSysctl(key, value string) error {
	return os.WriteFile(sysctlPath(key), []byte(value), 0o644)
}
