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
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/vishvananda/netns"

	"github.com/xdpgen/xdpgen/agent/dataplane/netnsthread"
)

// The API server listens on the host's 127.0.0.1 only. A node in a network namespace of its own reaches it
// through a loopback proxy: it listens on the node's 127.0.0.1 and forwards to the host's, so every kubeconfig
// and the pods' KUBERNETES_SERVICE_HOST=127.0.0.1 work unchanged on every node.
//
// The proxy must outlive the harness command that starts it, and the harness is a library (xdpgen-cluster, the
// end-to-end test binary): it runs the executable that uses it again, with loopbackProxyArg first, and this
// package's init serves the proxy instead of the program's main.
const loopbackProxyArg = "xdpgen-cluster-loopback-proxy"

func init() {
	if len(os.Args) != 5 || os.Args[1] != loopbackProxyArg {
		return
	}
	err := serveLoopbackProxy(os.Args[2], os.Args[3], os.Args[4])
	fmt.Fprintln(os.Stderr, "loopback proxy:", err)
	os.Exit(1)
}

// serveLoopbackProxy listens on listen inside the network namespace at netnsPath and forwards every connection
// to target in the namespace the process started in. It returns only on failure.
func serveLoopbackProxy(netnsPath, listen, target string) error {
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	// A socket stays in the namespace it was made in: only the listener is made on a thread inside the node's.
	var l net.Listener
	if err := netnsthread.Do(ns, func() (err error) {
		l, err = net.Listen("tcp", listen)
		return err
	}); err != nil {
		return fmt.Errorf("listen on %s in %s: %w", listen, netnsPath, err)
	}
	fmt.Fprintf(os.Stderr, "loopback proxy: %s in %s to %s\n", listen, netnsPath, target)
	for {
		in, err := l.Accept()
		if err != nil {
			return err
		}
		go forward(in, target)
	}
}

func forward(in net.Conn, target string) {
	defer in.Close()
	out, err := net.Dial("tcp", target)
	if err != nil {
		return // the API server is away (an outage test): the client retries
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

// loopbackListening checks that a node's loopback proxy accepts connections on the node's 127.0.0.1.
func loopbackListening(n Node, port int) error {
	ns, err := netns.GetFromPath(n.Netns)
	if err != nil {
		return err
	}
	defer ns.Close()
	return netnsthread.Do(ns, func() error {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}
