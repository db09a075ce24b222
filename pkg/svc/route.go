package svc

import "strings"

// ServiceOf is the service that serves an HTTP path (api.md's routes): how
// a reverse proxy in front of services run as separate processes routes
// (docs/architecture.md "Running the services separately"; the bench's and
// the tests' front proxies).
func ServiceOf(path string) string {
	switch {
	case strings.Contains(path, "/audit"):
		return "audit"
	case strings.Contains(path, "/subscription"), strings.Contains(path, "/charges"), strings.Contains(path, "/features"),
		strings.Contains(path, "/seats/"):
		return "seatbilling"
	case strings.HasPrefix(path, "/v1/permissions"), strings.Contains(path, "/roles"), strings.HasSuffix(path, "/role"),
		strings.Contains(path, "/access/"), strings.HasSuffix(path, "/effective-access"):
		return "rolepolicy"
	}
	return "identity"
}
