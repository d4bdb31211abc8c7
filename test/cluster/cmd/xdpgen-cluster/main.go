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

// Command xdpgen-cluster brings the local two-node Kubernetes (package test/cluster) up and down.
//
//	xdpgen-cluster up --bin-dir bin/k8s/<version> --image bin/xdpgen-image.tar --image bin/pause-image.tar [--nodes 1]
//	xdpgen-cluster down
//	xdpgen-cluster stop|start kube-apiserver     (outage tests)
//	xdpgen-cluster stop|start kubelet --node node2
//	xdpgen-cluster fingerprint                  (what teardown must restore, one fact per line)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/xdpgen/xdpgen/test/cluster"
	"github.com/xdpgen/xdpgen/test/k8sversion"
)

type images []string

func (i *images) String() string     { return strings.Join(*i, ",") }
func (i *images) Set(v string) error { *i = append(*i, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "xdpgen-cluster:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) < 2 {
		return fmt.Errorf("usage: xdpgen-cluster up|down|stop|start|fingerprint [flags]")
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	var opts cluster.Options
	var imgs images
	fs.StringVar(&opts.Dir, "dir", cluster.DefaultDir, "Run folder: state, logs, certificates, containerd and kubelet data.")
	if cmd == "up" {
		fs.StringVar(&opts.BinDir, "bin-dir", "bin/k8s/"+k8sversion.Version, "Folder with etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet.")
		fs.Var(&imgs, "image", "Image tarball to import into containerd (repeatable).")
		fs.StringVar(&opts.NodeName, "node-name", "", "Node name (default: the host name).")
		fs.IntVar(&opts.APIServerPort, "apiserver-port", 6443, "API server port on 127.0.0.1.")
		fs.IntVar(&opts.Nodes, "nodes", 2, "Number of nodes: 1 (the host) or 2 (and node2 in network namespace of its own).")
		fs.BoolVar(&opts.InstallPackages, "install-packages", true, "apt-get install "+strings.Join(cluster.Packages, ", ")+" when missing.")
	}
	var node string
	if cmd == "stop" || cmd == "start" {
		fs.StringVar(&node, "node", "", "The node whose component (containerd, kubelet, apiserver-proxy) to stop or start (default: the first).")
	}
	_ = fs.Parse(args)
	// Flags may follow the component too (stop kubelet --node node2): the flag package stops at the first argument.
	var positional []string
	for fs.NArg() > 0 {
		positional = append(positional, fs.Arg(0))
		_ = fs.Parse(fs.Args()[1:])
	}

	switch cmd {
	case "up":
		opts.Images = imgs
		// Ctrl-C while starting: Up stops, tears down what it started, and returns.
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		c, err := cluster.Up(ctx, opts)
		if err != nil {
			return err
		}
		fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig())
		return nil
	case "down":
		// Teardown is bounded; an interrupted one would leave the host half restored.
		signal.Ignore(os.Interrupt, syscall.SIGTERM)
		return cluster.Down(opts.Dir, os.Stderr)
	case "stop", "start":
		if len(positional) != 1 {
			return fmt.Errorf("usage: xdpgen-cluster %s COMPONENT [--node NODE]", cmd)
		}
		c, err := cluster.Open(opts.Dir, os.Stderr)
		if err != nil {
			return err
		}
		component := positional[0]
		if node != "" {
			if component, err = c.NodeComponent(node, component); err != nil {
				return err
			}
		}
		if cmd == "stop" {
			return c.Stop(component, 20*time.Second)
		}
		return c.Start(context.Background(), component)
	case "fingerprint":
		for _, l := range cluster.Fingerprint() {
			fmt.Println(l)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q: want up, down, stop, start or fingerprint", cmd)
}
