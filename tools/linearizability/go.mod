module shoal.dev/linearizability

go 1.19

require github.com/anishathalye/porcupine v1.3.0

// Offline: scripts/provision-linearizability.sh points this at the vendored
// ../shared/vendor/porcupine-1.3.0.tar.gz, unpacked into the cache, with
// `go mod edit -replace` on a copy of this directory.
