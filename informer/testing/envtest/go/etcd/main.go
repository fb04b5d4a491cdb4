// Command etcd is a thin wrapper around go.etcd.io/etcd/server/v3/etcdmain,
// built from published Go modules for kube-informer's local test control plane.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
