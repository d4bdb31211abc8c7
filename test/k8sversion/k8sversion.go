// Package k8sversion names the Kubernetes release that xdpgen builds its test binaries of, tests against and runs
// the local cluster on. This is the one place it is written: the Makefile reads it from this file (and hands it to
// hack/build-k8s.sh, which checks hack/kube/go.mod against it), the tests and the cluster harness import it.
package k8sversion

// Version is the Kubernetes release, as its tag (bin/k8s/<Version> holds its binaries).
const Version = "v1.37.2"
