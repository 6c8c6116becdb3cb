// Command etcd is upstream's etcd server, built at the go.etcd.io/etcd/server/v3 version that
// k8s.io/kubernetes requires, so the API server under test talks to the etcd it is released with.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
