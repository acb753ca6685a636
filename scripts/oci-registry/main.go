// Command oci-registry serves go-containerregistry's in-memory OCI registry with the referrers
// API (OCI distribution 1.1) switched on, at the loopback address it is given. The tests use it
// as a registry that has the API, beside Debian's docker-registry (distribution 2.8), which has
// not. Built by scripts/k8s-binaries (the cosign target) at the pinned GGCR_VERSION.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("address", "127.0.0.1:0", "host:port to listen on")
	flag.Parse()
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s", listener.Addr())
	quiet := log.New(io.Discard, "", 0) // no line per request
	server := &http.Server{
		Handler:           registry.New(registry.WithReferrersSupport(true), registry.Logger(quiet)),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Fatal(server.Serve(listener))
}
