// Command etcd is upstream etcd, built from the Go module proxy at the version pinned in go.mod, so that envtest
// and the local cluster need no downloaded release tarball. hack/build-k8s.sh builds it into bin/k8s/<version>/.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
