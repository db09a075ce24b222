package pgtest

import "syscall"

// sysProcAttr puts the child in its own process group, so that a ^C in the
// terminal does not hit the server half-way through the test run and Stop can
// SIGKILL it as a group; runs it as cred when non-nil; and asks the kernel to
// SIGKILL it when the test binary dies, so a crashed, timed-out or killed
// test run leaves no server behind (its backends exit by themselves once the
// postmaster is gone).
//
// Go applies Pdeathsig after switching credentials, so the kernel's reset of
// the signal on a uid change does not undo it. See startPostgres for why the
// server is started from a goroutine locked to its thread.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: cred,
	}
}
