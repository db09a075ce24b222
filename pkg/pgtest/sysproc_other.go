//go:build unix && !linux

package pgtest

import "syscall"

// sysProcAttr puts the child in its own process group, so that a ^C in the
// terminal does not hit the server half-way through the test run and Stop can
// SIGKILL it as a group, and runs it as cred when non-nil. Only Linux has a
// parent-death signal; elsewhere a server whose test binary died without
// calling Stop keeps running until killed.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: cred,
	}
}
