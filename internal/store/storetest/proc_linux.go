package storetest

import "syscall"

// processAttrs: Pdeathsig makes the kernel send SIGQUIT (PostgreSQL's
// immediate shutdown) to the server when the test process exits, however
// it exits. Go sets it after the credential change, which would otherwise
// clear it.
func processAttrs(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
}
