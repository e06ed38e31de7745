// Wrapper module: builds the etcd server (package main of go.etcd.io/etcd/server/v3).
module shipmate.local/provision/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v3.6.16
