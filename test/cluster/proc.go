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
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one process the harness started, identified by its PID and its start time (so that a PID the kernel
// reused for someone else's process is never signalled).
type process struct {
	Name      string   `json:"name"`
	PID       int      `json:"pid"`
	StartTime uint64   `json:"startTime"`
	Args      []string `json:"args"`
	Log       string   `json:"log"`
}

// startProcess starts args[0] in its own session (a Ctrl-C in the terminal reaches the harness, which stops the
// cluster in order, not every process at once), with its output appended to logPath. The process outlives the
// harness command that started it; a goroutine reaps it if it exits while the harness still runs.
func startProcess(name string, args []string, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(args, " "))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go cmd.Wait() //nolint:errcheck // reaps the process if it exits while we run; its log says why
	p := &process{Name: name, PID: cmd.Process.Pid, Args: args, Log: logPath}
	st, err := procStartTime(p.PID)
	if err != nil {
		return nil, fmt.Errorf("%s exited at once (see %s): %w", name, logPath, err)
	}
	p.StartTime = st
	return p, nil
}

// alive reports whether the process still runs: same PID, same start time, not a zombie.
func (p *process) alive() bool {
	if p == nil || p.PID <= 0 {
		return false
	}
	st, state, err := procStat(p.PID)
	return err == nil && st == p.StartTime && state != "Z" && state != "X"
}

// stop sends SIGTERM, waits up to grace for the process to exit, then sends SIGKILL and waits again.
func (p *process) stop(grace time.Duration) error {
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	if waitDead(p, grace) {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	if waitDead(p, 5*time.Second) {
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for %s and was killed", p.Name, p.PID, grace)
	}
	return fmt.Errorf("%s (pid %d) still runs after SIGKILL", p.Name, p.PID)
}

func waitDead(p *process, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return !p.alive()
}

// killPID sends SIGKILL to a process the harness caused (a container shim or a container process found through our
// own state files and cgroups) and waits for it to go.
func killPID(pid int) {
	st, _, err := procStat(pid)
	if err != nil {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	waitDead(&process{PID: pid, StartTime: st}, 5*time.Second)
}

func procStartTime(pid int) (uint64, error) {
	st, _, err := procStat(pid)
	return st, err
}

// procStat reads the start time (field 22) and state (field 3) from /proc/PID/stat.
func procStat(pid int) (startTime uint64, state string, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, "", errors.New("malformed /proc stat")
	}
	startTime, err = strconv.ParseUint(f[19], 10, 64)
	return startTime, f[0], err
}
