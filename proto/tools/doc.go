// Package tools pins the code generators (buf, protoc-gen-go) through the
// module's `tool` directives, so `make proto` builds the same versions on
// every machine from the Go module proxy instead of downloading binaries.
package tools
