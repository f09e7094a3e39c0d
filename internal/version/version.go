// Package version holds the project's version, set at build time with
// -ldflags "-X github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/version.Version=…".
package version

// Version is the release, or "dev" for a build outside the Makefile.
var Version = "dev"
