// Copied by scripts/sigstore-binaries into a copy of github.com/sigstore/timestamp-authority/v2
// (pkg/server), whose prometheus.go it edits to call metricsAddr() where upstream hard-codes
// ":2112": the metrics listener can then stay on loopback, and two servers can share a machine.

package server

import "os"

// metricsAddr is TSA_METRICS_ADDR (host:port) when it is set, else upstream's ":2112".
func metricsAddr() string {
	if addr := os.Getenv("TSA_METRICS_ADDR"); addr != "" {
		return addr
	}
	return ":2112"
}
