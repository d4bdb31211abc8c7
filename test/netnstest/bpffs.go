package netnstest

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// BPFFSDir is a fresh directory on a bpffs for a test's pins, removed with what is in it when the test ends: under
// /sys/fs/bpf when a bpffs is mounted there, else on a bpffs mounted for the test.
func BPFFSDir(t testing.TB) string {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &fs); err == nil && fs.Type == unix.BPF_FS_MAGIC {
		dir, err := os.MkdirTemp("/sys/fs/bpf", "xdpgen-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	dir, err := os.MkdirTemp("", "xdpgen-bpffs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		os.Remove(dir)
		t.Fatalf("mount a bpffs for the test's pins: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount the test's bpffs: %v", err)
		}
		os.Remove(dir)
	})
	return dir
}
